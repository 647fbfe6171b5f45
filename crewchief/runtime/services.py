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
from typing import TYPE_CHECKING, Any

from crewchief.config import Settings, load_settings
from crewchief.db.recorder import Recorder
from crewchief.db.writer import Writer
from crewchief.events import Event, EventBus, EventType
from crewchief.models.registry import CallInfo, ModelOverride, ModelRegistry, ModelReply
from crewchief.state import OperationContext

if TYPE_CHECKING:
    from crewchief.config import TierConfig
    from crewchief.simplicity import SimplicityDetector
    from crewchief.simplicity.detector import Decision
    from crewchief.skills.registry import SkillRegistry
    from crewchief.state import Route

log = logging.getLogger(__name__)


class _MemoryTx:
    """Stands in for a database transaction: SQL is skipped, events are numbered in memory."""

    def __init__(self, writer: MemoryWriter):
        self._writer = writer

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        return self

    rowcount = 1

    def one(self, sql: str, params: dict[str, Any] | None = None) -> None:
        return None

    def ts(self, value: Any) -> Any:
        return value

    json = flag = ts

    def append(
        self, op: str, type_: EventType, payload: dict[str, Any], key: str, now: Any
    ) -> Event | None:
        keys = self._writer.keys[op]
        if key in keys:
            return None
        keys.add(key)
        return Event(op, type_, payload, len(keys), now)


class MemoryWriter:
    """A writer that keeps nothing: for runs whose context says ``persist: false``."""

    def __init__(self) -> None:
        self.keys: dict[str, set[str]] = defaultdict(set)

    async def run(self, work: Any) -> Any:
        return work(_MemoryTx(self))

    def forget(self, op: str) -> None:
        return None

    async def close(self) -> None:
        return None


@dataclass
class Services:
    """Everything a node needs besides its state."""

    settings: Settings
    models: ModelRegistry
    bus: EventBus
    recorder: Recorder
    store: Writer | None = None

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
            return cls(settings, registry, bus, Recorder(MemoryWriter(), bus))
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
        self._slots.pop(operation_id, None)

    async def close(self) -> None:
        try:
            await self.recorder.writer.close()
        finally:
            await asyncio.to_thread(self.models.close)


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

    async def detector(self) -> SimplicityDetector:
        """The simplicity detector with this run's threshold."""
        return await simplicity_detector(self.settings, self.threshold)

    async def decide(self, request: str, force: Route | None) -> Decision:
        """Route ``request``: the decision the runner made before the run, or a fresh one."""
        made = self.context._decision
        if made is not None and made[:2] == (request, force):
            return made[2]
        return (await self.detector()).decide(request, force=force)

    def tier(self, name: str) -> TierConfig:
        """The alias and effort a tier runs with."""
        return self.settings.tiers[name]

    def planning_tier(self, state: dict[str, Any]) -> TierConfig:
        """The planner's tier: the detector's, or balanced after a fast-path fallback."""
        name = (state.get("simplicity") or {}).get("tier")
        return self.tier(name if name in ("balanced", "deep") else "balanced")

    @property
    def max_parallel(self) -> int:
        ctx = self.context.max_parallel_tasks
        return self.settings.max_parallel_tasks if ctx is None else ctx

    async def call_model(
        self,
        alias: str,
        messages: list,
        *,
        effort: str,
        node: str,
        operation_id: str,
        task: int | None = None,
        tools: list[dict[str, Any]] | None = None,
        schema: dict[str, Any] | None = None,
        purpose: str | None = None,
    ) -> ModelReply:
        """Call a model alias with this run's bindings; deltas are streamed and usage recorded."""
        return await self.models.call(
            alias,
            messages,
            effort=effort,
            info=CallInfo(node, operation_id, task, purpose=purpose),
            on_delta=self.recorder.on_delta,
            on_usage=self.recorder.model_call,
            tools=tools,
            schema=schema,
        )

    def workspace(self, state_workspace: str | None) -> str | None:
        return state_workspace or self.context.workspace

    def skills(self) -> SkillRegistry:
        """The skill registry for these settings (loaded once per process; reads files)."""
        from crewchief.skills.registry import skill_registry

        return skill_registry(self.settings)


async def simplicity_detector(
    settings: Settings, threshold: float | None = None
) -> SimplicityDetector:
    """The simplicity detector for ``settings`` (the model is read once, off the event loop)."""
    from crewchief.simplicity import SimplicityDetector
    from crewchief.simplicity._model import shipped_model, shipped_model_loaded

    # Only the first operation of a process reads the file, off the event loop.
    model = shipped_model() if shipped_model_loaded() else await asyncio.to_thread(shipped_model)
    return SimplicityDetector(
        threshold=settings.simplicity_threshold if threshold is None else threshold,
        deep_below=settings.simplicity_deep_below,
        model=model,
    )


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
