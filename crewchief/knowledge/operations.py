"""Operation memory: the operations an owner ran before in a workspace, found again by
meaning when the planner plans a new one there.

Each finished operation (completed or failed) is one entry, whose id is the operation's:
its request is what gets embedded, and its workspace, plan (the task titles), outcome and
a clipped answer travel in the metadata. Running it again (a task re-run) replaces the
entry. A recall returns up to ``k`` earlier operations of the same owner in the same
workspace, never the one being planned, whose similarity is at least ``floor``, and
renders them as one compact "relevant history" block for the planner's prompt.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crewchief.knowledge.store import Hit, VectorStore

log = logging.getLogger(__name__)

COLLECTION = "operations"
REQUEST_CHARS = 2000  # what is embedded of a request
PLAN_CHARS = 400  # what is kept of the task titles
ANSWER_CHARS = 600  # what is kept of the answer (or the error)
SHOWN_ANSWER_CHARS = 300  # what the planner is shown of it
SCAN_LIMIT = 5000  # the most entries read to find an owner's newest
HEADER = (
    "Relevant history: this user's earlier operations in this workspace, most similar first"
    " (what was asked, the plan, how it ended). Learn from them; do not repeat them blindly."
)


def workspace_key(workspace: str | None) -> str:
    """How a workspace is stored in an entry (operations without one share ``""``)."""
    return workspace or ""


def _clip(text: str, most: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= most else text[: most - 1].rstrip() + "…"


@dataclass(frozen=True, slots=True)
class RecalledOperations:
    """What a recall found, and how long it took."""

    hits: list[Hit]
    ms: float
    k: int
    floor: float

    def block(self) -> str:
        """The prompt block (empty when nothing was found)."""
        if not self.hits:
            return ""
        lines = [HEADER]
        for hit in self.hits:
            meta = hit.metadata
            lines.append(f"- Asked: {_clip(hit.text, REQUEST_CHARS // 4)}")
            if meta.get("plan"):
                lines.append(f"  Plan: {meta['plan']}")
            outcome = str(meta.get("status") or "unknown")
            answer = _clip(str(meta.get("answer") or ""), SHOWN_ANSWER_CHARS)
            lines.append(f"  Outcome: {outcome}" + (f": {answer}" if answer else ""))
        return "\n".join(lines)

    def metadata(self) -> dict[str, Any]:
        """What was added and why, as the operation record shows it."""
        return {
            "added": [
                {
                    "operation": hit.metadata.get("operation") or hit.id,
                    "score": round(hit.score, 3),
                    "asked": hit.text[:120],
                    "status": hit.metadata.get("status"),
                    "at": hit.metadata.get("at"),
                }
                for hit in self.hits
            ],
            "why": (
                f"up to {self.k} earlier operations of the same owner in the same workspace,"
                f" at least {self.floor:g} similar to this request"
            ),
            "ms": round(self.ms, 2),
        }


class OperationMemory:
    """Finished operations per owner, in a :class:`VectorStore` collection.

    Args:
        store: Where the entries are kept (its owner filter is what isolates owners).
        k: The most operations a recall returns.
        floor: The least similarity of an operation a recall returns.
    """

    def __init__(self, store: VectorStore, k: int = 3, floor: float = 0.7):
        self.store, self.k, self.floor = store, k, floor

    async def recall(
        self, owner: str | None, request: str, workspace: str | None, *, exclude: str
    ) -> RecalledOperations:
        """Up to ``k`` earlier operations of ``owner`` in ``workspace`` like ``request``,
        never the operation ``exclude`` (the one being planned)."""
        started = time.perf_counter()
        where = {"workspace": workspace_key(workspace), "operation": {"$ne": exclude}}
        hits = await self.store.asearch(
            owner, request[:REQUEST_CHARS], k=self.k, floor=self.floor, where=where
        )
        return RecalledOperations(hits, (time.perf_counter() - started) * 1000, self.k, self.floor)

    async def remember(
        self,
        owner: str | None,
        *,
        operation: str,
        request: str,
        workspace: str | None,
        status: str,
        tasks: Sequence[str] = (),
        answer: str | None = None,
        error: str | None = None,
    ) -> None:
        """Store (or replace) the entry of one finished operation."""
        plan = "; ".join(f"{i}. {t}" for i, t in enumerate(tasks, start=1))
        meta = {
            "operation": operation,
            "workspace": workspace_key(workspace),
            "status": status,
            "plan": _clip(plan, PLAN_CHARS) if plan else "",
            "answer": _clip(answer or error or "", ANSWER_CHARS),
            "source": "operation",
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        await self.store.aadd(owner, [request[:REQUEST_CHARS]], metadatas=[meta], ids=[operation])

    async def entries(self, owner: str | None, limit: int) -> list[Hit]:
        """The owner's entries, newest first (at most ``limit``)."""
        found = await self.store.aentries(owner, limit=SCAN_LIMIT)
        found.sort(key=lambda h: str(h.metadata.get("at") or ""), reverse=True)
        return found[:limit]

    async def forget(self, owner: str | None) -> int:
        """Delete every entry of ``owner`` (vectors included); how many there were."""
        return await self.store.adelete_owner(owner)
