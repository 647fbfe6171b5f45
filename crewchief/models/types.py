"""Plain shapes of a model call: tokens used, who is calling, what the ledger records.

No LangChain here: the database layer and the recorder import these without
pulling a model stack in.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from crewchief.effort import Effort

if TYPE_CHECKING:
    from langchain_core.messages import BaseMessage


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens of one call or a sum of calls. ``output`` includes ``reasoning``."""

    input: int = 0
    output: int = 0
    reasoning: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input + other.input, self.output + other.output, self.reasoning + other.reasoning
        )

    @classmethod
    def from_message(cls, message: BaseMessage) -> Usage:
        meta = getattr(message, "usage_metadata", None) or {}
        details = meta.get("output_token_details") or {}
        return cls(
            int(meta.get("input_tokens") or 0),
            int(meta.get("output_tokens") or 0),
            int(details.get("reasoning") or 0),
        )


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


@dataclass(frozen=True, slots=True)
class FastReply:
    """A one-off answer of the ``fast`` alias: its text, and whether the output bound cut
    it short (a cut answer is usually unusable as it is)."""

    text: str
    truncated: bool = False
