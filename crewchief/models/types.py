"""Plain shapes of a model call: tokens used, what they cost, who is calling, what the
ledger records.

No LangChain here: the database layer and the recorder import these without
pulling a model stack in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from crewchief.effort import Effort

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call or a sum of calls. ``output`` includes ``reasoning``, and
    ``input`` includes ``cached_input`` (prompt tokens the provider read from its cache)."""

    input: int = 0
    output: int = 0
    reasoning: int = 0
    cached_input: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input + other.input,
            self.output + other.output,
            self.reasoning + other.reasoning,
            self.cached_input + other.cached_input,
        )

    @classmethod
    def from_message(cls, message: BaseMessage) -> Usage:
        meta = getattr(message, "usage_metadata", None) or {}
        return cls(
            int(meta.get("input_tokens") or 0),
            int(meta.get("output_tokens") or 0),
            _detail(meta.get("output_token_details"), "reasoning"),
            _detail(meta.get("input_token_details"), "cache_read"),
        )


def _detail(details: Any, name: str) -> int:
    """A token count of LangChain's usage details: ``name``, or its service tier's
    variant (``priority_cache_read``, ``flex_reasoning``)."""
    if not isinstance(details, dict):
        return 0
    if details.get(name):
        return int(details[name])
    return sum(int(v or 0) for k, v in details.items() if k.endswith("_" + name))


# Where a call's cost comes from: the response said it (``provider``), the price table
# (``table``), or nowhere (``unpriced``: a local or unknown model, counted as 0).
COST_SOURCES: tuple[str, ...] = ("provider", "table", "unpriced")


@dataclass(frozen=True, slots=True)
class Cost:
    """What one call cost in US dollars, and where the figure comes from."""

    usd: float = 0.0
    source: str = "unpriced"

    @property
    def priced(self) -> bool:
        return self.source != "unpriced"


UNPRICED = Cost()


@dataclass(slots=True)
class CallInfo:
    """Who is calling: used for usage records, streamed deltas and the fake provider."""

    node: str
    operation_id: str | None = None
    task: int | None = None
    effort: Effort | None = None
    # Set by the registry for the duration of a call: which alias is answering.
    alias: str | None = None
    # Why the call is made, when the node alone does not say (e.g. "meta:search_codebase").
    purpose: str | None = None
    # The API key and its owner, for a call made outside any operation (the gateway).
    owner: str | None = None
    api_key_id: str | None = None
    # The gateway role the call serves (its answer, or the rewrite or summary made for it).
    role: str | None = None


@dataclass(slots=True)
class CallRecord:
    """One attempt at one model, as handed to the usage callback."""

    info: CallInfo
    alias: str
    model: str
    effort: Effort
    usage: Usage
    duration_ms: float
    error: str | None = None
    cost: Cost = UNPRICED
    # Whose credentials the call went out with: "platform", or "owner" (their stored key).
    paid_by: str = "platform"


@dataclass(frozen=True, slots=True)
class FastReply:
    """A one-off answer of the ``fast`` alias: its text, and whether the output bound cut
    it short (a cut answer is usually unusable as it is)."""

    text: str
    truncated: bool = False
