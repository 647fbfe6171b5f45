"""What the gateway did for one request: the ``x_crewchief`` metadata and headers."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from crewchief.gateway.engineer import Rewrite
from crewchief.gateway.roles import RoleChoice
from crewchief.gateway.targets import Route
from crewchief.knowledge.profile import NOT_ADDED
from crewchief.models.pricing import price_table
from crewchief.models.types import Usage

if TYPE_CHECKING:
    from crewchief.gateway.semantic import Lookup


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

    def metadata(self) -> dict[str, Any]:
        return {
            "role": self.role.role,
            "role_source": self.role.source,
            "role_reasons": list(self.role.reasons),
            "model": self.model,
            "model_reason": self.route.reason,
            "fallbacks_tried": self.tried,
            "tokens": {"prompt": self.usage.input, "completion": self.usage.output},
            "cost_usd": self.cost(),
            "rewrite": self.rewrite.metadata(),
            "tier": self.tier,
            "cache_hit": self.cache in ("hit", "semantic"),
            "cache": {"state": self.cache, "similarity": self.similarity, "refused": self.refused},
            "context_messages_added": self.context_added,
            "context_messages_left_out": self.context_left_out,
            "context_trimmed": self.trimmed,
            "memory": {"added": self.memory, "ms": round(self.memory_ms, 2)},
            "user_profile": self.user_profile,
            "total_ms": round((time.perf_counter() - self.started) * 1000, 2),
        }

    def cost(self) -> float | None:
        """What the answer's model call cost in US dollars, from the shipped price table:
        0 for a cache hit and for local models, None for a model the table does not price."""
        if self.cache in ("hit", "semantic"):
            return 0.0
        price = price_table().get(self.model) if self.model else None
        return round(price.cost(self.usage), 8) if price is not None else None

    def headers(self) -> dict[str, str]:
        return {
            "X-Crewchief-Role": self.role.role,
            "X-Crewchief-Role-Source": self.role.source,
            "X-Crewchief-Model": self.model or "",
            "X-Crewchief-Fallbacks": str(len(self.tried)),
            "X-Crewchief-Cache": self.cache,
        }


def first_message(answer: dict[str, Any]) -> dict[str, Any] | None:
    """The message of a completion's first choice."""
    choices = answer.get("choices") or [None]
    message = choices[0].get("message") if isinstance(choices[0], dict) else None
    return message if isinstance(message, dict) else None


def usage_of(data: dict[str, Any]) -> Usage:
    usage = data.get("usage") or {}
    if not isinstance(usage, dict):
        return Usage()
    details = usage.get("completion_tokens_details") or {}
    return Usage(
        int(usage.get("prompt_tokens") or 0),
        int(usage.get("completion_tokens") or 0),
        int(details.get("reasoning_tokens") or 0) if isinstance(details, dict) else 0,
    )
