"""Shared resources of a running crewchief: database, event bus, recorder, models.

The in-process runner opens one :class:`Services` and hands it to every run
through the run context. A graph run without one (LangGraph Studio, a graph
embedded as a subgraph) gets a process-wide default built from settings.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from crewchief.config import Settings, load_settings
from crewchief.db.recorder import Recorder
from crewchief.db.session import Database
from crewchief.events import Event, EventBus, EventType
from crewchief.graphs.state import OperationContext
from crewchief.models.registry import CallRecord, ModelOverride, ModelRegistry

log = logging.getLogger(__name__)


class MemoryRecorder(Recorder):
    """A recorder that keeps nothing on disk: events are numbered and published only.

    Used when a run's context says ``persist: false``.
    """

    def __init__(self, bus: EventBus):  # noqa: D107 - no database on purpose
        self.bus = bus
        self._seq: dict[str, int] = defaultdict(int)
        self._keys: dict[str, set[str]] = defaultdict(set)

    async def _write(
        self, op: str, work, *events: tuple[EventType, dict[str, Any], str]
    ) -> list[Event]:  # noqa: ANN001
        written = []
        for type_, payload, key in events:
            if key in self._keys[op]:
                continue
            self._keys[op].add(key)
            self._seq[op] += 1
            written.append(Event(op, type_, payload, self._seq[op]))
        for event in written:
            self.bus.publish(event)
        return written

    async def operation_resumed(self, op: str) -> None:
        n = sum(1 for k in self._keys[op] if k.startswith("operation.resumed:")) + 1
        await self._write(
            op, None, (EventType.OPERATION_RESUMED, {"resume": n}, f"operation.resumed:{n}")
        )

    async def get_task(self, op: str, seq: int) -> None:
        return None

    async def model_call(self, record: CallRecord) -> None:
        return None

    async def _resume_count(self, op: str) -> int:
        return sum(1 for k in self._keys[op] if k.startswith("operation.resumed:"))

    async def finish(
        self, op: str, status: str, *, answer: str | None = None, error: str | None = None
    ) -> None:
        type_ = {
            "completed": EventType.OPERATION_COMPLETED,
            "failed": EventType.OPERATION_FAILED,
            "cancelled": EventType.OPERATION_CANCELLED,
        }[status]
        payload = {"status": status, "answer": answer, "error": error}
        await self._write(
            op, None, (type_, payload, f"operation.end:{await self._resume_count(op)}")
        )

    async def status_of(self, op: str) -> None:
        return None


@dataclass
class Services:
    """Everything a node needs besides its state."""

    settings: Settings
    models: ModelRegistry
    bus: EventBus
    recorder: Recorder
    db: Database | None = None

    def __post_init__(self) -> None:
        self._slots: dict[str, asyncio.Semaphore] = {}

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        models: dict[str, ModelOverride] | None = None,
        persist: bool = True,
    ) -> Services:
        """Open the database (upgrading it when ``auto_migrate``) and build the registry."""
        bus = EventBus()
        registry = ModelRegistry(settings, models)
        if not persist:
            return cls(settings, registry, bus, MemoryRecorder(bus))
        from crewchief.db.migrate import ensure_current

        url = settings.resolved_database_url
        # Off the event loop: opening may create the SQLite file's folder.
        db = await asyncio.to_thread(Database.open, url)
        if settings.auto_migrate:
            await ensure_current(db, url)
        return cls(settings, registry, bus, Recorder(db, bus), db)

    def task_slots(self, operation_id: str, limit: int) -> asyncio.Semaphore:
        """The semaphore bounding how many tasks of one operation run at once."""
        if operation_id not in self._slots:
            self._slots[operation_id] = asyncio.Semaphore(limit)
        return self._slots[operation_id]

    def release(self, operation_id: str) -> None:
        self._slots.pop(operation_id, None)

    async def close(self) -> None:
        if self.db is not None:
            await self.db.close()


@dataclass
class NodeDeps:
    """What a node function receives next to its state."""

    services: Services
    context: OperationContext
    models: ModelRegistry

    @property
    def recorder(self) -> Recorder:
        return self.services.recorder

    @property
    def settings(self) -> Settings:
        return self.services.settings

    @property
    def threshold(self) -> float:
        ctx = self.context.simplicity_threshold
        return self.settings.simplicity_threshold if ctx is None else ctx

    @property
    def max_parallel(self) -> int:
        ctx = self.context.max_parallel_tasks
        return self.settings.max_parallel_tasks if ctx is None else ctx

    def workspace(self, state_workspace: str | None) -> str | None:
        return state_workspace or self.context.workspace


_defaults: dict[tuple[int, bool, str], Services] = {}
_defaults_lock: asyncio.Lock | None = None


async def default_services(settings: Settings | None, persist: bool) -> Services:
    """Process-wide services for runs that bring none (one set per event loop)."""
    global _defaults_lock
    if _defaults_lock is None:
        _defaults_lock = asyncio.Lock()
    loop_id = id(asyncio.get_running_loop())
    async with _defaults_lock:
        # Reading crewchief.toml is file I/O: keep it off the event loop (langgraph dev checks).
        settings = settings or await asyncio.to_thread(load_settings)
        key = (loop_id, persist, settings.model_dump_json())
        if key not in _defaults:
            log.info("opening default crewchief services (persist=%s)", persist)
            _defaults[key] = await Services.open(settings, persist=persist)
        return _defaults[key]


async def resolve_deps(context: OperationContext | None, settings: Settings | None) -> NodeDeps:
    context = context if isinstance(context, OperationContext) else OperationContext()
    services = context._services
    if services is None:
        services = await default_services(settings, context.persist)
    return NodeDeps(services, context, services.models.with_overrides(context.model_overrides()))
