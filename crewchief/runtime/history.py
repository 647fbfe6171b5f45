"""What a process keeps of each owner beyond one operation, and what the planner gets of it.

- **Operation memory**: when an operation ends (completed or failed), its request, plan,
  outcome and answer are stored for its owner in the background
  (:class:`~crewchief.knowledge.operations.OperationMemory`), and the owner's learned
  preferences are refreshed. Nothing of it can fail or slow the operation.
- **The planner's context**: for a new plan, the owner's profile ("About this user") and
  up to ``knowledge.memory_k`` earlier operations of the same owner in the same workspace,
  at least ``knowledge.memory_floor`` similar (never the operation itself), with a record
  of what was added and why.

The planner knows the operation's owner from the run's graph state (``owner``, None for
library use); an operation's end is read back from its row, owner included.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Any

from crewchief.config import Settings
from crewchief.db import repository
from crewchief.db.writer import Writer
from crewchief.knowledge.operations import COLLECTION, OperationMemory
from crewchief.knowledge.stores import VectorStores
from crewchief.runtime.profiles import ProfileBook

log = logging.getLogger(__name__)

REMEMBERED = ("completed", "failed")
RECALL_SECONDS = 10.0  # the first recall of a process loads the embeddings model
LEARN_FROM = 200  # the newest remembered operations (and gateway requests) learned from
CONVERSATIONS = "memory"  # the gateway's conversation memory collection
UNKNOWN: Any = object()  # a run that does not say whose it is


@dataclass(frozen=True, slots=True)
class PlanningContext:
    """What the planner's prompt gets beyond the request, and the record of it."""

    blocks: list[str] = field(default_factory=list)
    record: dict[str, Any] | None = None  # None: nothing was added


async def _quietly(what: str, work: Awaitable[Any], seconds: float | None = None) -> Any:
    """``work``'s result, or None when it fails or takes too long (logged)."""
    try:
        async with asyncio.timeout(seconds):
            return await work
    except TimeoutError:
        log.warning("%s took longer than %g s: left out", what, seconds)
    except Exception:  # noqa: BLE001 - extra context: the operation goes on without it
        log.exception("%s failed: left out", what)
    return None


class History:
    """The operation memory and the profiles of one process.

    Args:
        settings: ``knowledge.memory``, ``memory_k``, ``memory_floor``, ``profiles``.
        store: The app database (None: runs are not persisted; nothing is kept).
        vectors: Where the vector collections come from.
    """

    def __init__(self, settings: Settings, store: Writer | None, vectors: VectorStores):
        self.settings = settings
        self.store = store
        self.vectors = vectors
        self._memory: OperationMemory | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self.profiles = (
            ProfileBook(store, self._learning_sources, enabled=settings.knowledge.profiles)
            if store is not None
            else None
        )

    def operation_memory(self) -> OperationMemory | None:
        """The operation memory (None when ``knowledge.memory`` is off, runs are not
        persisted, or vectors are not kept here)."""
        knowledge = self.settings.knowledge
        if not knowledge.memory or self.store is None:
            return None
        if self._memory is None:
            store = self.vectors.get(COLLECTION)
            if store is None:
                return None
            self._memory = OperationMemory(store, knowledge.memory_k, knowledge.memory_floor)
        return self._memory

    # -- when an operation ends ----------------------------------------------------------

    def operation_ended(self, operation_id: str, status: str) -> None:
        """The recorder's end hook: remember the operation in the background."""
        if status not in REMEMBERED or self.store is None:
            return
        task = asyncio.get_running_loop().create_task(self._remember(operation_id))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _remember(self, operation_id: str) -> None:
        assert self.store is not None
        record = await _quietly(
            "reading an ended operation", repository.get_operation(self.store, operation_id)
        )
        if record is None:
            return
        memory = self.operation_memory()
        if memory is not None:
            await _quietly(
                "storing an operation in the operation memory",
                memory.remember(
                    record.owner,
                    operation=record.id,
                    request=record.request,
                    workspace=record.workspace,
                    status=record.status,
                    tasks=[t.description for t in record.tasks],
                    answer=record.answer,
                    error=record.error,
                ),
            )
        if self.profiles is not None:
            await _quietly("learning preferences", self.profiles.refresh(record.owner))

    async def _learning_sources(self, owner: str | None) -> tuple[list[str], list[str]]:
        """The owner's newest remembered requests, and the workspace of each remembered
        operation: what profiles learn from (so forgetting the memory forgets it too)."""
        requests: list[str] = []
        workspaces: list[str] = []
        memory = self.operation_memory()
        if memory is not None:
            for hit in await memory.entries(owner, LEARN_FROM):
                requests.append(hit.text)
                workspaces.append(str(hit.metadata.get("workspace") or ""))
        conversations = self.vectors.get(CONVERSATIONS) if self.settings.knowledge.memory else None
        if conversations is not None:
            found = await conversations.aentries(owner, limit=5000)
            found.sort(key=lambda h: str(h.metadata.get("at") or ""), reverse=True)
            requests += [hit.text for hit in found[:LEARN_FROM]]
        return requests, workspaces

    # -- when an operation is planned ----------------------------------------------------

    async def for_plan(
        self, operation_id: str, request: str, workspace: str | None, owner: Any = UNKNOWN
    ) -> PlanningContext:
        """The owner's profile and similar earlier operations for the planner's prompt.

        ``owner`` is the run's (its graph state's); a run whose state has none (one from
        an older checkpoint) has it read from the operation's row.
        """
        if self.store is None:
            return PlanningContext()
        if owner is UNKNOWN:
            head = await _quietly(
                "reading the operation's owner",
                repository.operation_head(self.store, operation_id),
            )
            if head is None:
                return PlanningContext()
            owner = head[0]
        blocks: list[str] = []
        record: dict[str, Any] = {}
        if self.profiles is not None:
            about = await _quietly("reading the owner's profile", self.profiles.about(owner))
            if about is not None:
                blocks.append(about.text)
                record["profile"] = about.metadata()
        memory = self.operation_memory()
        if memory is not None:
            recalled = await _quietly(
                "recalling earlier operations",
                memory.recall(owner, request, workspace, exclude=operation_id),
                RECALL_SECONDS,
            )
            if recalled is not None and recalled.hits:
                blocks.append(recalled.block())
                record["memory"] = recalled.metadata()
        return PlanningContext(blocks, record or None)

    # -- forgetting ----------------------------------------------------------------------

    async def forget(self, owner: str | None) -> dict[str, int]:
        """Delete the owner's operation memory (vectors included) and profile; how many
        entries of each were deleted."""
        await self.settle()  # an operation being stored is deleted too
        memory = self.operation_memory()
        deleted = {"operation_memory": await memory.forget(owner) if memory is not None else 0}
        deleted["profile"] = await self.profiles.delete(owner) if self.profiles is not None else 0
        return deleted

    async def settle(self) -> None:
        """Wait for what is being stored (at shutdown, before forgetting, and in tests)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
        if self.profiles is not None:
            await self.profiles.settle()
