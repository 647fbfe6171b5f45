"""Shared resources of a running crewchief: database, event bus, recorder, models.

The facade (and, in scaled mode, a worker) opens one :class:`Services` and hands
it to every run in the run's context (:class:`crewchief.runtime.deps.RunContext`).
A graph run without one (LangGraph Studio, a graph embedded as a subgraph) gets a
process-wide default built from settings (:func:`crewchief.runtime.deps.default_services`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from crewchief.config import Settings
from crewchief.db import repository
from crewchief.db.memory import MemoryRecorder
from crewchief.db.recorder import Recorder
from crewchief.db.writer import Writer
from crewchief.events import EventBus, EventType
from crewchief.knowledge.stores import VectorStores
from crewchief.models.registry import ModelOverride, ModelRegistry
from crewchief.runtime.budgets import Budgets, Notice
from crewchief.runtime.credentials import CredentialBook
from crewchief.runtime.fanout import EventPoller, RedisBus
from crewchief.runtime.history import History
from crewchief.tools.mcp import McpManager


@dataclass
class Services:
    """Everything a run needs besides its state and its own settings."""

    settings: Settings
    models: ModelRegistry
    bus: EventBus
    recorder: Recorder | MemoryRecorder
    store: Writer | None = None
    poller: EventPoller | None = None
    vectors: VectorStores | None = None  # default: the process's own, from settings
    # The operation memory and the owners' profiles (see crewchief.runtime.history).
    history: History = field(init=False, repr=False)
    # Owners' provider credentials (None when nothing is persisted).
    credentials: CredentialBook | None = field(init=False, repr=False)
    # Budgets and plans: every model call of the registry reserves on them.
    budgets: Budgets = field(init=False, repr=False)
    # The MCP servers executors and the planner use ([mcp.servers]); connected on first use.
    mcp: McpManager = field(init=False, repr=False)
    _slots: dict[str, asyncio.Semaphore] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.vectors is None:
            self.vectors = VectorStores(self.settings)
        self.history = History(self.settings, self.store, self.vectors)
        self.credentials = (
            CredentialBook(self.settings, self.store) if self.store is not None else None
        )
        self.budgets = Budgets(self.settings, self.store)
        self.budgets.on_notice = self._budget_notice
        # A stdio server's stderr goes to <home>/mcp/NAME.log, unless nothing is persisted.
        logs = self.settings.home / "mcp" if self.store is not None else None
        self.mcp = McpManager(self.settings.mcp.servers, log_dir=logs)
        self.models.budgets = self.budgets
        if isinstance(self.recorder, Recorder):
            self.recorder.on_end = self.history.operation_ended

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        models: dict[str, ModelOverride] | None = None,
        persist: bool = True,
        vectors: VectorStores | None = None,
    ) -> Services:
        """Open the database (upgrading it when ``auto_migrate``) and build the registry.

        With ``persist=False`` nothing touches the disk: the recorder keeps each
        operation in memory (:class:`crewchief.db.memory.MemoryRecorder`). ``vectors``:
        the vector collections to share with the caller (default: this instance's own).
        """
        registry = ModelRegistry(settings, models)
        if not persist:
            bus = EventBus()
            return cls(settings, registry, bus, MemoryRecorder(bus), vectors=vectors)
        from crewchief.db.migrate import ensure_current

        url = settings.resolved_database_url
        store = Writer(url)
        try:
            if settings.auto_migrate:
                await ensure_current(store, url)
        except BaseException:
            await store.close()
            raise
        bus = (
            RedisBus(settings.redis_url, settings.redis_prefix)
            if settings.redis_url
            else EventBus()
        )
        await bus.start()
        poller = EventPoller(
            bus,
            lambda ops: repository.event_heads(store, ops),
            interval=settings.events_poll_seconds,
        )
        if isinstance(bus, RedisBus):
            bus.on_reconnect = poller.wake
        poller.start()
        return cls(settings, registry, bus, Recorder(store, bus), store, poller, vectors)

    async def _budget_notice(self, notice: Notice) -> None:
        """A budget warning caused by an operation's call becomes an event of it."""
        if notice.operation_id is None:
            return
        payload = notice.payload()
        key = f"budget.{notice.kind}:{notice.limit.scope}:{notice.limit.period}:{notice.resets_at}"
        await self.recorder.budget_event(
            notice.operation_id, EventType.BUDGET_WARNING, payload, key
        )

    def task_slots(self, operation_id: str, limit: int) -> asyncio.Semaphore:
        """The semaphore bounding how many tasks of one operation run at once."""
        if operation_id not in self._slots:
            self._slots[operation_id] = asyncio.Semaphore(limit)
        return self._slots[operation_id]

    def release(self, operation_id: str) -> None:
        """Forget an operation's task slots (it ended, or its run stopped)."""
        self._slots.pop(operation_id, None)

    async def close(self) -> None:
        try:
            await self.history.settle()  # what is being stored, before the database closes
            if self.poller is not None:
                await self.poller.close()
            await self.bus.close()
            await self.budgets.close()
            await self.recorder.close()
        finally:
            try:
                await self.mcp.close()  # ends the processes of stdio servers
            finally:
                await asyncio.to_thread(self.models.close)
