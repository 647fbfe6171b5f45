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
from crewchief.db.memory import MemoryRecorder
from crewchief.db.recorder import Recorder
from crewchief.db.writer import Writer
from crewchief.events import EventBus
from crewchief.models.registry import ModelOverride, ModelRegistry


@dataclass
class Services:
    """Everything a run needs besides its state and its own settings."""

    settings: Settings
    models: ModelRegistry
    bus: EventBus
    recorder: Recorder | MemoryRecorder
    store: Writer | None = None
    _slots: dict[str, asyncio.Semaphore] = field(default_factory=dict, init=False, repr=False)

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        models: dict[str, ModelOverride] | None = None,
        persist: bool = True,
    ) -> Services:
        """Open the database (upgrading it when ``auto_migrate``) and build the registry.

        With ``persist=False`` nothing touches the disk: the recorder keeps each
        operation in memory (:class:`crewchief.db.memory.MemoryRecorder`).
        """
        bus = EventBus()
        registry = ModelRegistry(settings, models)
        if not persist:
            return cls(settings, registry, bus, MemoryRecorder(bus))
        from crewchief.db.migrate import ensure_current

        url = settings.resolved_database_url
        store = Writer(url)
        try:
            if settings.auto_migrate:
                await ensure_current(store, url)
        except BaseException:
            await store.close()
            raise
        return cls(settings, registry, bus, Recorder(store, bus), store)

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
            await self.recorder.close()
        finally:
            await asyncio.to_thread(self.models.close)
