"""What a node receives next to its state: :class:`NodeDeps`, built once per run.

A run started by the facade (or a worker) carries its :class:`NodeDeps` in a
:class:`RunContext`, the run's LangGraph context. A run that brings a plain
:class:`~crewchief.state.OperationContext` (LangGraph Studio, a parent graph)
gets dependencies built from process-wide services.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from crewchief.config import Settings, load_settings
from crewchief.events import EventType
from crewchief.models.registry import ModelRegistry, ModelReply, Tune
from crewchief.models.types import CallInfo
from crewchief.runtime.services import Services
from crewchief.state import OperationContext

if TYPE_CHECKING:
    from crewchief.config import TierConfig
    from crewchief.db.memory import MemoryRecorder
    from crewchief.db.recorder import Recorder
    from crewchief.models.credentials import OwnerCredentials
    from crewchief.runtime.history import PlanningContext
    from crewchief.simplicity import SimplicityDetector
    from crewchief.skills.registry import SkillRegistry
    from crewchief.tools.mcp import McpManager

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Payer:
    """Whose budgets a run's model calls count against: the API key that started it and
    the key's owner (both None for runs of the library)."""

    owner: str | None = None
    api_key_id: str | None = None

    @classmethod
    def of(cls, options: dict[str, Any]) -> Payer:
        """The payer a run's stored options name (see ``Crewchief.start``)."""
        given = options.get("payer") or {}
        return cls(given.get("owner"), given.get("api_key_id"))


@dataclass
class NodeDeps:
    """What a node function receives next to its state."""

    services: Services
    context: OperationContext
    models: ModelRegistry  # the services' registry with this run's alias overrides
    payer: Payer = field(default_factory=Payer)
    settings: Settings = field(init=False)
    recorder: Recorder | MemoryRecorder = field(init=False)
    mcp: McpManager = field(init=False)  # the services' MCP servers

    def __post_init__(self) -> None:
        self.settings = self.services.settings
        self.recorder = self.services.recorder
        self.mcp = self.services.mcp

    @classmethod
    def for_run(cls, services: Services, context: OperationContext) -> NodeDeps:
        """The dependencies of one run: ``services`` with the context's model overrides."""
        payer = getattr(context, "payer", None) or Payer()
        models = services.models.with_overrides(context.model_overrides())
        return cls(services, context, models, payer)

    async def detector(self) -> SimplicityDetector:
        """The simplicity detector with this run's threshold."""
        from crewchief.simplicity import load_detector

        threshold = self.context.simplicity_threshold
        return await load_detector(
            threshold=self.settings.simplicity_threshold if threshold is None else threshold,
            deep_below=self.settings.simplicity_deep_below,
        )

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
        tune: Tune | None = None,
        quiet: bool = False,
    ) -> ModelReply:
        """Call a model alias with this run's bindings; deltas are streamed (unless
        ``quiet``: a helper call whose text is not the task's output) and usage recorded;
        ``tune`` sets this call's temperature and max_tokens."""
        reply = await self.models.call(
            alias,
            messages,
            effort=effort,
            info=CallInfo(
                node,
                operation_id,
                task,
                purpose=purpose,
                owner=self.payer.owner,
                api_key_id=self.payer.api_key_id,
            ),
            on_delta=None if quiet else self.recorder.on_delta,
            on_usage=self.recorder.model_call,
            tools=tools,
            schema=schema,
            tune=tune,
            credentials=await self.owner_credentials(),
        )
        if reply.downgraded_from is not None:
            payload = {"node": node, "task": task, "from": reply.downgraded_from,
                       "to": reply.model}  # fmt: skip
            key = f"budget.downgraded:{node}:{task}:{reply.downgraded_from}"
            await self.recorder.budget_event(
                operation_id, EventType.BUDGET_DOWNGRADED, payload, key
            )
        return reply

    async def owner_credentials(self) -> OwnerCredentials | None:
        """The provider keys the run's owner stored (from a short cache): their model calls
        to those providers go out with them (None where nothing is persisted).

        Raises:
            CredentialsUnavailable: they cannot be decrypted here; the owner expects their
                key, so the platform's is not used instead.
        """
        book = self.services.credentials
        return await book.for_owner(self.payer.owner) if book is not None else None

    async def planning_context(
        self, operation_id: str, request: str, workspace: str | None, owner: Any
    ) -> PlanningContext:
        """What the planner's prompt gets beyond the request: the owner's profile and their
        similar earlier operations in the workspace (see :mod:`crewchief.runtime.history`);
        ``owner`` is :data:`~crewchief.runtime.history.UNKNOWN` when the run does not say."""
        return await self.services.history.for_plan(operation_id, request, workspace, owner)

    def skills(self) -> SkillRegistry:
        """The skill registry for these settings (loaded once per process; reads files)."""
        from crewchief.skills.registry import skill_registry

        return skill_registry(self.settings)


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


class RunContext(OperationContext):
    """The context of a run started by crewchief itself: the per-run settings plus its deps."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    deps: SkipJsonSchema[NodeDeps | None] = Field(None, exclude=True, repr=False)
    payer: SkipJsonSchema[Payer | None] = Field(None, exclude=True, repr=False)

    @classmethod
    def open(cls, services: Services, **fields: Any) -> RunContext:
        """A run's context with its :class:`NodeDeps`, built once for all its nodes."""
        context = cls(**fields)
        context.deps = NodeDeps.for_run(services, context)
        return context


async def resolve_deps(context: OperationContext | None, settings: Settings | None) -> NodeDeps:
    """The node dependencies of a run that brought none (Studio, a parent graph)."""
    context = context if isinstance(context, OperationContext) else OperationContext()
    services = await default_services(settings, context.persist)
    return NodeDeps.for_run(services, context)
