"""What the gateway did for one request: the ``x_crewchief`` metadata and headers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crewchief.db.feedback import ResponseRecord, response_id
from crewchief.gateway.engineer import Rewrite
from crewchief.gateway.roles import RoleChoice
from crewchief.gateway.targets import Route
from crewchief.knowledge.profile import NOT_ADDED
from crewchief.models.pricing import reported
from crewchief.models.types import UNPRICED, Cost, Usage

if TYPE_CHECKING:
    from crewchief.gateway.semantic import Lookup
    from crewchief.gateway.spend import Spend


@dataclass
class Trace:
    """What the gateway did for one request: the ``x_crewchief`` metadata."""

    role: RoleChoice
    route: Route
    owner: str | None = None  # the caller's API key owner and key, for the ledger
    api_key_id: str | None = None
    started: float = field(default_factory=time.perf_counter)
    model: str | None = None
    # off (not cacheable), miss, hit (exact), semantic (a request that means the same), or
    # bypass (Cache-Control: no-cache)
    cache: str = "off"
    # A semantic hit's similarity to the request it reused; on a miss, that of the nearest
    # entry its critical terms refused (``refused`` says which term), if any.
    similarity: float | None = None
    refused: str | None = None
    lookup: Lookup | None = None  # the request's semantic cache lookup, when it takes part
    conversation: str | None = None
    context_added: int = 0  # history messages put into the request
    context_left_out: int = 0  # history messages that did not fit the window
    trimmed: dict[str, Any] | None = None  # how a request too long for its window was shortened
    question: str | None = None  # the latest human message as the client wrote it
    memory: list[dict[str, Any]] = field(default_factory=list)  # earlier exchanges added
    memory_ms: float = 0.0
    about: str | None = None  # the owner's "About this user" block, when added
    user_profile: dict[str, Any] = field(default_factory=lambda: dict(NOT_ADDED))
    to_store: list[tuple[dict[str, Any], int]] = field(default_factory=list)
    rewrite: Rewrite = field(default_factory=lambda: Rewrite(reason="switched off"))
    tier: dict[str, Any] | None = None  # model "auto": the simplicity detector's tier
    tried: list[dict[str, str]] = field(default_factory=list)  # failed attempts
    usage: Usage = field(default_factory=Usage)
    stated_cost: float | None = None  # the cost the upstream's answer states, if any
    cost: Cost = UNPRICED  # the answering call's, once the ledger has it
    # Whose credentials the answering call went out with: platform, or owner (their own
    # stored key); None when no call answered (a cached answer).
    credentials: str | None = None
    spend: Spend | None = None  # the caller's plan and budgets, when any limits it
    # The answer's id (x_crewchief.id: what feedback names it by), and the messages as the
    # client sent them (the record of the answer keeps them).
    id: str = field(default_factory=response_id)
    prompt: list[dict[str, Any]] = field(default_factory=list)
    stream: bool = False  # whether the client asked for a stream

    def metadata(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role.role,
            "role_source": self.role.source,
            "role_reasons": list(self.role.reasons),
            "model": self.model,
            "model_reason": self.route.reason,
            "fallbacks_tried": self.tried,
            "tokens": {
                "prompt": self.usage.input,
                "completion": self.usage.output,
                "cached": self.usage.cached_input,
                "reasoning": self.usage.reasoning,
            },
            "cost_usd": 0.0 if self.cached else round(self.cost.usd, 8),
            "cost_source": "cache" if self.cached else self.cost.source,
            "credentials": None if self.cached else self.credentials,
            "rewrite": self.rewrite.metadata(),
            "tier": self.tier,
            "cache_hit": self.cached,
            "cache": {"state": self.cache, "similarity": self.similarity, "refused": self.refused},
            "context_messages_added": self.context_added,
            "context_messages_left_out": self.context_left_out,
            "context_trimmed": self.trimmed,
            "memory": {"added": self.memory, "ms": round(self.memory_ms, 2)},
            "user_profile": self.user_profile,
            "budget": self.spend.metadata() if self.spend is not None else None,
            "total_ms": round((time.perf_counter() - self.started) * 1000, 2),
        }

    @property
    def cached(self) -> bool:
        """Whether the answer came from a cache (and cost nothing)."""
        return self.cache in ("hit", "semantic")

    def headers(self) -> dict[str, str]:
        return {
            "X-Crewchief-Response-Id": self.id,
            "X-Crewchief-Role": self.role.role,
            "X-Crewchief-Role-Source": self.role.source,
            "X-Crewchief-Model": self.model or "",
            "X-Crewchief-Fallbacks": str(len(self.tried)),
            "X-Crewchief-Cache": self.cache,
        }

    def response(self, answer: dict[str, Any]) -> ResponseRecord:
        """The record of this request's answer (its first choice's message), kept so it
        can be rated by :attr:`id` and listed in the request log (with the wall time so far:
        the answer is complete when it is kept)."""
        text = answer.get("content")
        tier = self.tier or {}
        return ResponseRecord(
            id=self.id,
            owner=self.owner,
            api_key_id=self.api_key_id,
            role=self.role.role,
            model=self.model,
            auto_tier=tier.get("tier"),
            simplicity_score=tier.get("score"),
            cache=self.cache,
            conversation_id=self.conversation,
            messages=self.prompt,
            answer=text if isinstance(text, str) else None,
            stream=self.stream,
            latency_ms=round((time.perf_counter() - self.started) * 1000, 2),
            fallbacks=list(self.tried),
            input_tokens=self.usage.input,
            output_tokens=self.usage.output,
            cost_usd=0.0 if self.cached else round(self.cost.usd, 8),
        )


def first_message(answer: dict[str, Any]) -> dict[str, Any] | None:
    """The message of a completion's first choice."""
    choices = answer.get("choices") or [None]
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    return message if isinstance(message, dict) else None


def usage_of(data: dict[str, Any]) -> Usage:
    usage = data.get("usage") or {}
    if not isinstance(usage, dict):
        return Usage()
    return Usage(
        _count(usage.get("prompt_tokens")),
        _count(usage.get("completion_tokens")),
        _count(_get(usage.get("completion_tokens_details"), "reasoning_tokens")),
        _count(_get(usage.get("prompt_tokens_details"), "cached_tokens")),
    )


def stated_cost(data: dict[str, Any]) -> float | None:
    """The cost in dollars an answer (or a chunk) states: ``usage.cost`` (as OpenRouter and
    LiteLLM send it), or the ``x_crewchief.cost_usd`` of another crewchief gateway when it
    priced the call."""
    usage = data.get("usage")
    if isinstance(usage, dict) and (cost := reported(usage.get("cost"))) is not None:
        return cost
    meta = data.get("x_crewchief")
    if isinstance(meta, dict) and meta.get("cost_source") in ("provider", "table", "cache"):
        return reported(meta.get("cost_usd"))
    return None


def _get(details: Any, name: str) -> Any:
    return details.get(name) if isinstance(details, dict) else None


def _count(value: Any) -> int:
    """A token count as an upstream sends it (a non-negative number), else 0."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value) if 0 < value < 2**62 else 0
