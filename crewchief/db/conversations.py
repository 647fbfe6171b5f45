"""The gateway's conversations: what each ``conversation_id`` said, per owner."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from crewchief.db.models import utcnow
from crewchief.db.writer import Tx, Writer


def digest(message: dict[str, Any]) -> str:
    """A message's identity: its role, content, tool calls and tool call id."""
    keys = ("role", "content", "tool_calls", "tool_call_id", "name")
    material = json.dumps(
        {k: message.get(k) for k in keys}, sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(material.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredMessage:
    message: dict[str, Any]
    digest: str
    tokens: int


async def recent(
    store: Writer, owner: str | None, conversation_id: str, limit: int
) -> list[StoredMessage]:
    """The conversation's last ``limit`` messages, oldest first."""

    def work(tx: Tx) -> list[StoredMessage]:
        rows = tx.execute(
            "SELECT message, digest, tokens FROM gateway_messages"
            " WHERE conversation_id = :conv AND "
            + ("owner IS NULL" if owner is None else "owner = :owner")
            + " ORDER BY id DESC LIMIT :limit",
            {"conv": conversation_id, "owner": owner, "limit": limit},
        ).fetchall()
        return [StoredMessage(tx.parse_json(m), d, t) for m, d, t in reversed(rows)]

    return await store.read(work)


async def append(
    store: Writer,
    owner: str | None,
    conversation_id: str,
    messages: list[tuple[dict[str, Any], int]],
) -> None:
    """Add ``(message, tokens)`` pairs to the conversation, in order."""
    if not messages:
        return

    def work(tx: Tx) -> None:
        now = tx.ts(utcnow())
        for message, tokens in messages:
            tx.execute(
                "INSERT INTO gateway_messages (owner, conversation_id, message, digest, tokens,"
                " created_at) VALUES (:owner, :conv, :message, :digest, :tokens, :now)",
                {
                    "owner": owner,
                    "conv": conversation_id,
                    "message": tx.json(message),
                    "digest": digest(message),
                    "tokens": tokens,
                    "now": now,
                },
            )

    await store.run(work)


async def forget(store: Writer, owner: str | None) -> int:
    """Delete every message of ``owner``'s conversations; how many there were."""

    def work(tx: Tx) -> int:
        where = "owner IS NULL" if owner is None else "owner = :owner"
        return tx.execute(f"DELETE FROM gateway_messages WHERE {where}", {"owner": owner}).rowcount  # noqa: S608 - no input in the SQL text

    return await store.run(work)


class Conversations:
    """The conversations of one app database (what the gateway's context reads and adds to)."""

    def __init__(self, store: Writer):
        self._store = store

    async def recent(
        self, owner: str | None, conversation_id: str, limit: int
    ) -> list[StoredMessage]:
        return await recent(self._store, owner, conversation_id, limit)

    async def append(
        self, owner: str | None, conversation_id: str, messages: list[tuple[dict[str, Any], int]]
    ) -> None:
        await append(self._store, owner, conversation_id, messages)

    async def forget(self, owner: str | None) -> int:
        return await forget(self._store, owner)
