"""Conversation memory: what an owner asked before, and what was answered, found again by
meaning for a new request.

Each exchange is one entry: the human request is what gets embedded (a new request is
compared with earlier requests, which matches far better than with whole exchanges), the
answer travels in its metadata. Entries are written in the background, after the answer
has gone out. A recall returns up to ``k`` earlier exchanges of the same owner, from other
conversations, whose similarity is at least ``floor``, and renders them as one compact
"relevant history" message.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crewchief.knowledge.store import Hit, VectorStore

log = logging.getLogger(__name__)

QUESTION_CHARS = 2000  # what is embedded of a request
ANSWER_CHARS = 600  # what is kept of an answer, and shown of it in a recall
HEADER = "Relevant history from this user's earlier conversations (most similar first):"


@dataclass(frozen=True, slots=True)
class Recalled:
    """What a recall found, and how long it took."""

    hits: list[Hit]
    ms: float

    def message(self) -> str:
        lines = [HEADER]
        for hit in self.hits:
            answer = str(hit.metadata.get("answer") or "").strip()
            lines.append(f"- Asked: {hit.text.strip()}\n  Answered: {answer}")
        return "\n".join(lines)

    def metadata(self) -> list[dict[str, Any]]:
        return [
            {
                "score": round(hit.score, 3),
                "conversation": hit.metadata.get("conversation") or None,
                "asked": hit.text[:120],
                "at": hit.metadata.get("at"),
            }
            for hit in self.hits
        ]


class ConversationMemory:
    """Earlier exchanges per owner, in a :class:`VectorStore` collection.

    Args:
        store: Where the entries are kept (its owner filter is what isolates owners).
        k: The most exchanges a recall returns.
        floor: The least similarity of an exchange a recall returns.
    """

    def __init__(self, store: VectorStore, k: int = 3, floor: float = 0.7):
        self.store, self.k, self.floor = store, k, floor
        self._pending: set[asyncio.Task[None]] = set()

    async def recall(
        self, owner: str | None, question: str, *, exclude_conversation: str | None = None
    ) -> Recalled:
        """Up to ``k`` earlier exchanges of ``owner`` like ``question`` (not from the
        conversation ``exclude_conversation``: that one's history comes from SQL)."""
        started = time.perf_counter()
        where = None
        if exclude_conversation:
            where = {"conversation": {"$ne": exclude_conversation}}
        asked = question[:QUESTION_CHARS]
        try:
            hits = await self.store.asearch(
                owner, asked, k=self.k + 1, floor=self.floor, where=where
            )
        except Exception as exc:  # noqa: BLE001 - memory is best effort: answer without it
            log.warning("conversation memory unavailable, answering without it: %s", exc)
            hits = []
        # The same question asked again is no history: the response cache answers repeats.
        hits = [h for h in hits if h.text.strip() != asked.strip()][: self.k]
        return Recalled(hits, (time.perf_counter() - started) * 1000)

    async def remember(
        self,
        owner: str | None,
        question: str,
        answer: str,
        *,
        conversation: str | None = None,
        role: str = "",
        source: str = "gateway",
    ) -> None:
        """Store one exchange now."""
        meta = {
            "answer": answer[:ANSWER_CHARS],
            "conversation": conversation or "",
            "role": role,
            "source": source,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        await self.store.aadd(owner, [question[:QUESTION_CHARS]], metadatas=[meta])

    def remember_later(self, owner: str | None, question: str, answer: str, **kwargs: Any) -> None:
        """Store one exchange in the background (a failure is logged, never raised)."""

        async def run() -> None:
            try:
                await self.remember(owner, question, answer, **kwargs)
            except Exception:  # noqa: BLE001 - memory is best effort; the answer went out
                log.exception("could not store an exchange in the conversation memory")

        task = asyncio.get_running_loop().create_task(run())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(self) -> None:
        """Wait for the exchanges being stored (at shutdown, and in tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    async def forget(self, owner: str | None) -> int:
        """Delete every exchange of ``owner`` (vectors included); how many there were."""
        await self.settle()  # an exchange being stored is deleted too
        return await self.store.adelete_owner(owner)
