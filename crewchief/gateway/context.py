"""A gateway conversation's history: kept in SQL per ``conversation_id``, added back to the
requests of clients that do not send it all, within the model's context window.

A request with a ``conversation_id`` (body field or ``X-Crewchief-Conversation`` header)
gets the conversation's recent messages it did not send itself, placed after its own
system messages, newest kept first when the window is short; a tool result never comes
without the call it answers. After the answer, the client's new messages and the answer
are stored. System prompts are not stored: agents resend theirs every time.

Similar exchanges of the owner's other conversations come from the conversation memory
(:mod:`crewchief.knowledge.memory`, the gateway's ``recall`` step); a request too long for
its window is shortened by :mod:`crewchief.knowledge.window`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from crewchief.db.conversations import StoredMessage, digest
from crewchief.knowledge.window import OPENAI
from crewchief.models.tokens import DEFAULT_ENCODING

_SYSTEM = ("system", "developer")


class ConversationStore(Protocol):
    async def recent(
        self, owner: str | None, conversation_id: str, limit: int
    ) -> list[StoredMessage]: ...

    async def append(
        self, owner: str | None, conversation_id: str, messages: list[tuple[dict[str, Any], int]]
    ) -> None: ...


def message_tokens(message: dict[str, Any]) -> int:
    """Tokens a message takes in a prompt (tiktoken's o200k_base)."""
    return OPENAI.turn(message, DEFAULT_ENCODING).tokens


@dataclass
class Added:
    """What the history put into a request."""

    messages: list[dict[str, Any]]  # the request's messages with the history in place
    added: int  # history messages added
    left_out: int  # history messages that did not fit the window
    new: list[tuple[dict[str, Any], int]]  # the client's messages to store afterwards


def add_history(sent: list[dict[str, Any]], history: list[StoredMessage], budget: int) -> Added:
    """``sent`` with the ``history`` messages it lacks, newest first within ``budget`` tokens.

    ``budget``: the tokens left for history once the client's own messages and the answer
    are counted.
    """
    sent_digests = {digest(m) for m in sent}
    missing = [h for h in history if h.digest not in sent_digests]
    kept: list[dict[str, Any]] = []
    for stored in reversed(missing):  # newest first
        if stored.tokens > budget:
            break  # older ones would leave a gap: stop at the first that does not fit
        budget -= stored.tokens
        kept.append(stored.message)
    kept.reverse()
    while kept and kept[0].get("role") == "tool":  # its call did not fit: it goes too
        kept.pop(0)
    head = 0
    while head < len(sent) and sent[head].get("role") in _SYSTEM:
        head += 1
    known = {h.digest for h in history}
    new = [
        (m, message_tokens(m))
        for m in sent
        if m.get("role") not in _SYSTEM and digest(m) not in known
    ]
    return Added(sent[:head] + kept + sent[head:], len(kept), len(missing) - len(kept), new)
