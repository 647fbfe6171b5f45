"""Run operations: the library's entry point, which the CLI and the REST API use too.

Example::

    from crewchief import Crewchief

    async with Crewchief() as cc:
        result = await cc.run("add a docstring to every function", workspace="./src")
        print(result.answer)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langgraph.types import Command

from crewchief import metrics
from crewchief._aio import cancel_and_wait
from crewchief.client import _feedback
from crewchief.client._budgets import admit_operation
from crewchief.client._owners import OwnerData
from crewchief.client._reports import Reports, operation_filters
from crewchief.client.handle import OperationHandle
from crewchief.client.validate import (
    InvalidRequest,
    invalid,
    validate_metadata,
    validate_models,
    validate_request,
    validate_usage,
    workspace_directory,
)
from crewchief.config import Settings, load_settings
from crewchief.db import keys as api_keys
from crewchief.db import repository
from crewchief.db.checkpoint import checkpointer as _checkpointer
from crewchief.db.conversations import Conversations
from crewchief.db.keys import ApiKeyInfo
from crewchief.db.routes import RouteTables
from crewchief.db.usage import usage_report
from crewchief.errors import (
    OperationBusy,
    OperationNotFound,
    OperationStateError,
)
from crewchief.events import Event, Subscription
from crewchief.executor import jobs
from crewchief.executor.inprocess import InProcessExecutor
from crewchief.executor.queue import QueueExecutor
from crewchief.graphs.fork import apply_fork, plan_fork
from crewchief.graphs.operation import build_operation_graph
from crewchief.knowledge.stores import VectorStores
from crewchief.metrics import ClusterStats
from crewchief.models.pricing import price_table
from crewchief.models.registry import ModelOverride
from crewchief.models.types import CallInfo, CallRecord, FastReply
from crewchief.results import OperationResult, OperationSummary, UsageReport
from crewchief.runtime.leases import LeaseKeeper
from crewchief.runtime.services import Services
from crewchief.simplicity import load_detector
from crewchief.state import OperationInput, RouteDecision, plan_text
from crewchief.steering import EditPlan, RejectPlan, edited_tasks, parse_decision

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from crewchief.db.feedback import ResponseLog
    from crewchief.knowledge.memory import ConversationMemory
    from crewchief.knowledge.search import SearchResult
    from crewchief.knowledge.store import VectorStore

# Statuses a run records just before it returns (it ended, or waits for a plan decision).
_SETTLED = ("completed", "failed", "cancelled", "rejected", "awaiting_approval")
# How long a plan decision waits for the checkpoint of a plan recorded as awaiting approval.
INTERRUPT_WAIT_S = 10.0


def stored_decision(current: OperationResult) -> RouteDecision | None:
    """The route decision stored with an operation (None if it was never routed)."""
    s = current.simplicity
    if current.route not in ("fast", "plan") or s.score is None or s.tier is None:
        return None
    return {
        "route": current.route,
        "score": s.score,
        "tier": s.tier,
        "reasons": list(s.reasons),
        "forced": bool(current.route_forced),
    }


class Crewchief(OwnerData, Reports):
    """Runs, streams, resumes and inspects operations in this process.

    Args:
        settings: Configuration; default :func:`crewchief.load_settings`.
        models: Rebind aliases for this instance: ``{"orchestrator": "openai:gpt-5"}``
            or a chat model instance such as :class:`crewchief.FakeChatModel`.
        recover: Take over operations whose process died (their run lease expired) and
            run them on from their last checkpoint; what ``crewchief serve`` does.
        **overrides: Settings fields to override (e.g. ``home=...``).

    Use it as an async context manager, or call :meth:`open` and :meth:`close`.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        models: Mapping[str, ModelOverride] | None = None,
        recover: bool = False,
        **overrides: Any,
    ):
        if settings is None:
            settings = load_settings(**overrides)
        elif overrides:
            settings = settings.model_copy(update=overrides)
        self.settings = settings
        self._model_overrides = dict(models or {})
        self._stack: contextlib.AsyncExitStack | None = None
        self._services: Services | None = None
        self._graph: Any = None
        self._executor: InProcessExecutor | QueueExecutor | None = None
        self._recover = recover
        # Local models the gateway started that no alias is bound to (closed with this).
        self._gateway_locals: dict[str, Any] = {}
        self._memory: Any = None  # the conversation memory, built on first use
        self._responses: ResponseLog | None = None  # the gateway's answers, built on first use
        # The vector collections, shared with this instance's services (one embeddings model).
        self._vectors = VectorStores(settings)

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> Crewchief:
        """Open the database (upgrading it), the checkpointer and compile the graph."""
        if self._stack is not None:
            return self
        stack = contextlib.AsyncExitStack()
        try:
            self._services = await Services.open(
                self.settings, models=self._model_overrides, vectors=self._vectors
            )
            stack.push_async_callback(self._services.close)
            self._services.models.check()
            checkpointer = await stack.enter_async_context(_checkpointer(self.settings))
            self._graph = build_operation_graph(self.settings).compile(checkpointer=checkpointer)
            if self.settings.executor == "queue":
                self._executor = await self._open_queue(stack)
            else:
                self._executor = self._open_in_process(stack)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    def _open_in_process(self, stack: contextlib.AsyncExitStack) -> InProcessExecutor:
        services = self.services
        leases = None
        if services.store is not None:
            leases = LeaseKeeper(services.store, self.settings.lease_seconds)
            leases.start()
            stack.push_async_callback(leases.close)
        executor = InProcessExecutor(services, self._graph, leases)
        stack.push_async_callback(executor.close)
        if self._recover and leases is not None:
            sweeper = asyncio.create_task(self._take_over_orphans(), name="crewchief-recover")
            stack.push_async_callback(cancel_and_wait, sweeper)
        return executor

    async def _open_queue(self, stack: contextlib.AsyncExitStack) -> QueueExecutor:
        """Scaled mode: runs are jobs for ``crewchief worker`` processes."""
        app = jobs.queue_app(self.settings)
        if self.settings.auto_migrate:
            await jobs.upgrade_queue_schema(self.settings)
        await stack.enter_async_context(app.open_async())
        executor = QueueExecutor(self.services, app, jobs.sync_queue_app(self.settings))
        stack.push_async_callback(executor.close)
        return executor

    async def close(self) -> None:
        """Release resources. Runs in this process are cancelled (they end ``cancelled``);
        in scaled mode (``executor = "queue"``) operations go on on the workers."""
        if self._memory is not None:
            await self._memory.settle()  # the exchanges being stored
        if self._responses is not None:
            await self._responses.settle()  # the gateway answers being kept
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = None
        models, self._gateway_locals = list(self._gateway_locals.values()), {}
        for model in models:
            await asyncio.to_thread(model.close)  # stops its llama-server when nobody else uses it

    async def __aenter__(self) -> Crewchief:
        return await self.open()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def services(self) -> Services:
        if self._services is None:
            raise OperationStateError("Crewchief is not open: use 'async with Crewchief() as cc'")
        return self._services

    @property
    def graph(self):  # noqa: ANN201 - CompiledStateGraph
        """The compiled operation graph (with this instance's checkpointer)."""
        self.services  # noqa: B018 - raises when not open
        return self._graph

    # -- running ---------------------------------------------------------------------------

    async def start(
        self,
        request: str,
        *,
        workspace: str | Path | None = None,
        route: str | None = None,
        metadata: dict[str, Any] | None = None,
        operation_id: str | None = None,
        approve_plan: bool = False,
        models: dict[str, str] | None = None,
        owner: str | None = None,
        api_key_id: str | None = None,
    ) -> OperationHandle:
        """Create the operation and start running it in the background.

        Args:
            approve_plan: Stop after planning (status ``awaiting_approval``) until
                :meth:`review_plan` is called.
            models: Rebind aliases for this operation only: ``{"delegate": "openai:gpt-4.1-mini"}``.
            owner: Who the operation belongs to (the REST API's key owner).
            api_key_id: The API key that starts it; its model calls are counted for that
                key (and ``owner``) in the usage ledger.

        Raises:
            InvalidRequest: a field is invalid (nothing is recorded or run).
        """
        request, ws = validate_request(request, workspace, route)
        metadata = validate_metadata(metadata)
        models = validate_models(models, self.settings)
        await admit_operation(self.services.budgets, owner, api_key_id, models)
        # Routed now, so the route is stored with the operation and the run knows its path.
        decision = await self._route(request, route)
        options: dict[str, Any] = {}
        if approve_plan:
            options["approve_plan"] = True
        if models:
            options["models"] = models
        if owner is not None or api_key_id is not None:
            # Whose budgets its model calls count against, on whichever process runs it.
            options["payer"] = {"owner": owner, "api_key_id": api_key_id}
        op = operation_id or str(uuid.uuid4())
        payload: OperationInput = {
            "request": request,
            "operation_id": op,
            "workspace": ws,
            "forced_route": route,
            "approve_plan": approve_plan,
            "decision": decision,
            "owner": owner,
        }
        # Subscribe first so the handle's events start with operation.started.
        sub = self.services.bus.subscribe(op)
        try:
            await self.services.recorder.create_operation(
                operation_id=op,
                request=request,
                workspace=ws,
                route=route,
                metadata=metadata,
                owner=owner,
                api_key_id=api_key_id,
                options=options,
                decision=decision,
                lease=self._lease_terms(),
                # A job queue enqueues the run in the same transaction.
                then=self._runner.with_record(op, payload, options),
            )
        except BaseException:
            sub.close()
            await self._runner.unclaim(op)
            raise
        handle = await self._launch(op, payload, options, sub, created=True)
        return handle

    async def _route(self, request: str, forced: str | None) -> RouteDecision:
        """The simplicity detector's decision for a new run (or the forced route)."""
        made = (
            await load_detector(
                threshold=self.settings.simplicity_threshold,
                deep_below=self.settings.simplicity_deep_below,
            )
        ).decide(request, force=forced)
        return made.as_route()

    def _lease_terms(self) -> tuple[str, float] | None:
        holder = self._runner.holder
        return (holder, self._runner.lease_seconds) if holder else None

    @contextlib.asynccontextmanager
    async def _claimed(self, operation_id: str) -> AsyncIterator[None]:
        """Hold the right to run the operation while its state is changed for a new run.

        Raises:
            OperationBusy: another process runs it.
        """
        await self._runner.claim(operation_id)
        try:
            yield
        except BaseException:
            await self._runner.unclaim(operation_id)
            raise

    async def _launch(
        self,
        op: str,
        payload: OperationInput | Command | None,
        options: dict[str, Any] | None,
        sub: Subscription | None = None,
        *,
        created: bool = False,
    ) -> OperationHandle:
        sub = sub or self.services.bus.subscribe(op)
        try:
            run = await self._runner.launch(op, payload, options or {}, created=created)
        except BaseException:
            sub.close()
            raise
        return OperationHandle(self, op, run, sub)

    @property
    def _runner(self) -> InProcessExecutor | QueueExecutor:
        self.services  # noqa: B018 - raises when not open
        assert self._executor is not None
        return self._executor

    async def run(self, request: str, **kwargs: Any) -> OperationResult:
        """Run an operation to its end and return it (see :meth:`start` for arguments)."""
        handle = await self.start(request, **kwargs)
        return await handle.wait()

    async def stream(self, request: str, **kwargs: Any) -> AsyncIterator[Event]:
        """Run an operation and yield its events as they happen, ending with the terminal one.

        Token deltas arrive as transient ``model.delta`` events (``seq`` is None).
        Leaving the loop early cancels the operation.
        """
        handle = await self.start(request, **kwargs)
        finished = False
        try:
            async for event in handle.events():
                yield event
            finished = True
        finally:
            if not finished and not handle.done:
                await handle.cancel()

    async def resume(self, operation_id: str) -> OperationHandle:
        """Continue an interrupted operation from its last checkpoint.

        Tasks that finished before the interruption are not run again, and no
        event is recorded twice.

        Raises:
            OperationNotFound: unknown id.
            OperationStateError: the operation already ended, is running here,
                or has no checkpoint to resume from.
        """
        return await self._resume(operation_id, "manual")

    async def _resume(self, operation_id: str, reason: str) -> OperationHandle:
        current = await self.get(operation_id)
        if current.finished:
            raise OperationStateError(f"operation {operation_id} already ended ({current.status})")
        if self._runner.running(operation_id):
            raise OperationStateError(f"operation {operation_id} is already running")
        snapshot = await self._graph.aget_state({"configurable": {"thread_id": operation_id}})
        payload: OperationInput | None = None
        if not snapshot.values:
            # Interrupted before the first checkpoint: start the graph over.
            payload = {
                "request": current.request,
                "operation_id": operation_id,
                "workspace": current.workspace,
                "forced_route": current.route if current.route_forced else None,
                "approve_plan": bool((current.options or {}).get("approve_plan")),
                "decision": stored_decision(current),
            }
        elif snapshot.interrupts:
            raise OperationStateError(
                f"operation {operation_id} waits for a plan decision: use review_plan"
            )
        async with self._claimed(operation_id):
            await self.services.recorder.operation_resumed(operation_id)
            metrics.get().takeovers.labels(reason).inc()
            return await self._launch(operation_id, payload, current.options)

    async def _take_over_orphans(self) -> None:
        """Run on the operations whose process died: their run lease expired while running."""
        keeper = self._runner.leases
        assert keeper is not None
        while True:
            try:
                for op in await keeper.orphans():
                    try:
                        await self._resume(op, "crash")
                        log.warning("took over operation %s: its process stopped renewing it", op)
                    except (OperationBusy, OperationStateError):
                        pass  # another process was quicker, or it ended meanwhile
            except Exception as exc:  # noqa: BLE001 - the next round may do better
                log.warning("taking over orphaned operations failed: %s", exc)
            await asyncio.sleep(self.settings.lease_seconds / 2)

    async def cancel(self, operation_id: str) -> OperationResult:
        """Cancel an operation, wherever it runs (idempotent for ended ones).

        In this process its run is cancelled at once; in scaled mode its job is aborted and the
        worker running it stops; an operation run by another embedded process stops when that
        process next renews its lease (within a third of ``lease_seconds``).
        """
        if await self._runner.cancel(operation_id):
            return await self.get(operation_id)
        current = await self.get(operation_id)
        if not current.finished:
            await self.services.recorder.finish(operation_id, "cancelled", error="cancelled")
            current = await self.get(operation_id)
        return current

    # -- steering ------------------------------------------------------------------------

    async def review_plan(
        self, operation_id: str, decision: Any, *, owner: Any = repository.ANY_OWNER
    ) -> OperationHandle:
        """Give an operation that is ``awaiting_approval`` the reviewer's decision.

        ``decision`` is ``{"action": "accept"}``, ``{"action": "edit", "tasks": [...]}``,
        ``{"action": "replan", "feedback": "..."}`` or ``{"action": "reject"}``
        (or one of the models in :mod:`crewchief.steering`). The decision is
        recorded before this returns; the run continues in the background.

        Raises:
            OperationNotFound: unknown id (or another owner's).
            OperationStateError: the operation is not waiting for a decision.
            InvalidDecision: the decision is invalid (nothing is recorded).
        """
        current = await self._settled(operation_id, owner)
        decision = parse_decision(decision)
        if current.status != "awaiting_approval" or self._runner.running(operation_id):
            raise OperationStateError(
                f"operation {operation_id} is {current.status}, not awaiting_approval"
            )
        snapshot = await self._waiting_plan(operation_id)
        if not snapshot.interrupts:
            raise OperationStateError(f"operation {operation_id} has no plan waiting for review")
        tasks = text = None
        if isinstance(decision, EditPlan):
            skills = await asyncio.to_thread(self._skill_names, current.workspace)
            tasks = edited_tasks(decision, skills=skills, max_tasks=self.settings.max_plan_tasks)
            text = plan_text(tasks, "Plan edited by the reviewer.")
        plan_round = snapshot.values.get("plan_round") or 1
        async with self._claimed(operation_id):
            # Recorded here so the caller sees the new status at once (the node's write is then a
            # no-op), and only once: a second decision on the same round is refused.
            recorded = await self.services.recorder.plan_reviewed(
                operation_id,
                plan_round=plan_round,
                action=decision.action,
                tasks=tasks,
                text=text,
                feedback=getattr(decision, "feedback", None),
            )
            if not recorded:
                raise OperationStateError(
                    f"operation {operation_id} already has a decision on plan round {plan_round}"
                )
            if isinstance(decision, RejectPlan):
                reason = f"plan rejected: {decision.reason}" if decision.reason else "plan rejected"
                await self.services.recorder.finish(operation_id, "rejected", error=reason)
            command = Command(resume=decision.model_dump(exclude_none=True))
            return await self._launch(operation_id, command, current.options)

    async def _waiting_plan(self, operation_id: str) -> Any:
        """The run's state, with its plan interrupt once the checkpoint holding it is written.

        The run records ``awaiting_approval`` just before it checkpoints the interrupt; when
        another process (a worker) runs it, a decision can come in between, and waits for
        the checkpoint (up to :data:`INTERRUPT_WAIT_S`) rather than failing.
        """
        config = {"configurable": {"thread_id": operation_id}}
        snapshot = await self._graph.aget_state(config)
        deadline = asyncio.get_running_loop().time() + INTERRUPT_WAIT_S
        while not snapshot.interrupts and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
            snapshot = await self._graph.aget_state(config)
        return snapshot

    async def _settled(self, operation_id: str, owner: Any) -> OperationResult:
        """The operation as stored, once a run that already recorded where it stopped returned.

        A run records its end (or its wait for a plan decision) a moment before it
        returns; a decision or re-run in that moment waits for it instead of failing.
        """
        current = await self.get(operation_id, owner=owner)
        if self._runner.running(operation_id) and current.status in _SETTLED:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await self._runner.settle(operation_id)
            current = await self.get(operation_id, owner=owner)
        return current

    def _skill_names(self, workspace: str | None) -> set[str]:
        from crewchief.skills.registry import skill_registry

        registry = skill_registry(self.settings)
        return {m.name for m in registry.usable(workspace=bool(workspace))}

    async def rerun_task(
        self,
        operation_id: str,
        sequence: int,
        *,
        description: str | None = None,
        instructions: str | None = None,
        owner: Any = repository.ANY_OWNER,
    ) -> OperationHandle:
        """Run a task again, and every task that depends on it, then synthesize again.

        The graph forks from the checkpoint before the task ran; the other tasks
        keep their results. The earlier versions of the re-run tasks stay in the
        operation's history (``TaskResult.history``).

        Raises:
            OperationNotFound: unknown id (or another owner's).
            TaskNotFound: the operation has no such task.
            OperationStateError: the operation has not ended, or was rejected.
        """

        current = await self._settled(operation_id, owner)
        if self._runner.running(operation_id) or current.status not in (
            "completed",
            "failed",
            "cancelled",
        ):
            raise OperationStateError(
                f"operation {operation_id} is {current.status}: only an operation that ended"
                " (completed, failed or cancelled) can re-run a task"
            )
        fork = await plan_fork(self._graph, operation_id, sequence)
        async with self._claimed(operation_id):
            versions = await self.services.recorder.task_rerun(
                operation_id,
                sequence=sequence,
                affected=fork.dependents,
                description=description,
                instructions=instructions,
            )
            sub = self.services.bus.subscribe(operation_id)
            try:
                await apply_fork(
                    self._graph,
                    fork,
                    description=description,
                    instructions=instructions,
                    versions=versions,
                    ended_as=current.status,
                )
            except BaseException as exc:
                sub.close()
                await self.services.recorder.finish(operation_id, "failed", error=f"rerun: {exc}")
                raise
            handle = await self._launch(operation_id, None, current.options, sub)
        handle.rerun = {
            "task": sequence,
            "version": versions[sequence],
            "dependents": fork.dependents,
        }
        return handle

    # -- reading ---------------------------------------------------------------------------

    async def get(
        self, operation_id: str, *, events: bool = False, owner: Any = repository.ANY_OWNER
    ) -> OperationResult:
        """An operation as stored. Raises :class:`OperationNotFound` for unknown ids.

        With ``owner``, another owner's operation is reported as not found.
        """
        store = self.services.store
        if store is None:
            raise OperationNotFound("this instance does not persist operations")
        return await repository.get_operation(
            store, operation_id, include_events=events, owner=owner
        )

    async def list(
        self,
        *,
        status: str | None = None,
        limit: int = 20,
        before: tuple[Any, str] | None = None,
        owner: Any = repository.ANY_OWNER,
        route: str | None = None,
        key: str | None = None,
        since: str | date | datetime | None = None,
        until: str | date | datetime | None = None,
        q: str | None = None,
    ) -> list[OperationSummary]:
        """Operations, newest first, each with what its model calls cost so far.

        Args:
            before: ``(created_at, id)`` of the previous page's last.
            route: ``fast``, ``plan`` or ``undecided`` (not routed yet).
            key: Only those the API key with this id started.
            since, until: Only those created in this period, as :meth:`usage` takes them
                (a date, a datetime, an ISO string, or a span back from now: ``"7d"``).
            q: Only those whose request contains this text (ignoring case), or whose id
                starts with it.

        Raises:
            InvalidRequest: a filter is invalid (the message names it).
        """
        filters = operation_filters(route=route, key=key, since=since, until=until, q=q)
        return await repository.list_operations(
            self.services.store, status=status, limit=limit, before=before, owner=owner, **filters
        )

    async def usage(
        self,
        *,
        group_by: str | Sequence[str] | None = None,
        since: str | date | datetime | None = None,
        until: str | date | datetime | None = None,
        model: str | None = None,
        role: str | None = None,
        operation_id: str | None = None,
        key: str | None = None,
        owner: Any = repository.ANY_OWNER,
    ) -> UsageReport:
        """Model calls, tokens and cost from the usage ledger, summed per group.

        Args:
            group_by: Any of ``model``, ``role``, ``key``, ``owner``, ``day`` (UTC),
                ``operation``, ``task``, ``alias``, ``node`` (a list, or names separated
                by commas); none gives the totals alone.
            since: Calls at or after this time: a date, a datetime (UTC when it has no
                zone), an ISO string, or a span back from now (``"7d"``, ``"12h"``).
            until: Calls before this time; a date includes that whole day.
            model, role, operation_id, key: Only calls of this model spec, gateway role,
                operation or API key id.
            owner: Only this owner's calls (None: calls made without an API key); every
                owner's by default.

        Raises:
            InvalidRequest: a field is invalid (the message names it).
        """
        query = validate_usage(
            group_by=group_by,
            since=since,
            until=until,
            model=model,
            role=role,
            operation_id=operation_id,
            key=key,
            owner=owner,
        )
        report = await usage_report(self._store(), **query)
        report.prices_as_of = price_table().as_of
        return report

    async def replay(self, operation_id: str, *, after: int = 0) -> repository.Replay | None:
        """Owner, status, stored events with ``seq > after`` and the newest event of an
        operation, in one read; None if unknown."""
        return await repository.replay(self._store(), operation_id, after=after)

    async def stored_events(self, operation_id: str, *, after: int = 0) -> list[Any]:
        """The operation's stored events with ``seq > after``, in order."""
        return await repository.list_events(self._store(), operation_id, after_seq=after)

    def subscribe(self, operation_id: str) -> Subscription:
        """Live events of one operation from now on (close the subscription when done)."""
        return self.services.bus.subscribe(operation_id)

    def route_tables(self) -> RouteTables:
        """The gateway's routing tables in the app database."""
        return RouteTables(self._store())

    def conversations(self) -> Conversations:
        """The gateway's conversations in the app database."""
        return Conversations(self._store())

    def vectors(self, collection: str) -> VectorStore | None:
        """An owner-scoped vector store collection with the ``embeddings`` model (None when
        vectors are not kept here: scaled mode without ``knowledge.chroma_url``, or no such
        embeddings; logged). Nothing loads until it is first used."""
        return self._vectors.get(collection)

    async def search(
        self,
        workspace: str | Path,
        query: str,
        *,
        owner: str | None = None,
        k: int = 10,
        mode: str = "hybrid",
        glob: str | None = None,
        refresh: str = "auto",
    ) -> SearchResult:
        """Hybrid code search: the chunks of ``workspace`` that best answer ``query``, from
        ``owner``'s index of it (built first when there is none, kept fresh incrementally).

        Args:
            k: How many hits (1-50).
            mode: ``hybrid`` (BM25 and vectors, fused), ``bm25`` or ``vector``.
            glob: Only files matching it, e.g. ``src/**/*.py``.
            refresh: ``auto`` (a stale index is refreshed in the background), ``now``
                (refresh first) or ``never``.

        Raises:
            InvalidRequest: naming the argument that cannot be used.
        """
        from crewchief.knowledge.search import SearchError, code_search

        root = workspace_directory(workspace)
        if refresh not in ("auto", "now", "never"):
            raise invalid("refresh", f"expected auto, now or never, got {refresh!r}")
        try:
            return await asyncio.to_thread(
                code_search(self.settings, self._vectors).search,
                owner,
                root,
                query,
                k=k,
                mode=mode,
                glob=glob,
                refresh=refresh,  # type: ignore[arg-type]
            )
        except SearchError as exc:
            field, _, message = str(exc).partition(": ")
            raise invalid(field, message) from None

    def memory(self) -> ConversationMemory | None:
        """The conversation memory: earlier exchanges per owner, in the vector store (None
        when ``knowledge.memory`` is off or there are no embeddings here)."""
        if not self.settings.knowledge.memory:
            return None
        if self._memory is None:
            from crewchief.knowledge.memory import ConversationMemory

            store = self.vectors("memory")
            if store is None:
                return None
            knowledge = self.settings.knowledge
            self._memory = ConversationMemory(store, knowledge.memory_k, knowledge.memory_floor)
        return self._memory

    async def forget(self, owner: str | None) -> dict[str, int]:
        """Delete what crewchief keeps of ``owner`` beyond operations: the gateway's
        conversations, the conversation memory, the operation memory, the semantic cache, the
        code search indexes (vectors included), the gateway's answers and the ratings the owner
        gave, and the profile; how many entries of each were deleted."""
        deleted = {"conversation_messages": await self.conversations().forget(owner)}
        deleted.update(await _feedback.forget(self._store(), self._responses, owner))
        memory = self.memory()
        deleted["memory"] = await memory.forget(owner) if memory is not None else 0
        store = self.vectors("semantic_cache")
        deleted["semantic_cache"] = await store.adelete_owner(owner) if store is not None else 0
        from crewchief.knowledge.search import code_search

        search = code_search(self.settings, self._vectors)
        deleted["code_indexes"] = await asyncio.to_thread(search.forget, owner)
        # Last: the profile learns from the memories deleted above, so nothing comes back.
        deleted.update(await self.services.history.forget(owner))
        return deleted

    async def local_url(self, spec: str) -> str:
        """The base URL of a ``local:`` model's llama-server, pulled, built and started first
        if need be (a model bound to an alias is the alias's own instance)."""
        model = dict(self.services.models.local_models()).get(spec)
        if model is None:
            from crewchief.models.providers import build_chat_model

            model = self._gateway_locals.get(spec)
            if model is None:
                model = build_chat_model(spec, "medium", self.settings)
                self._gateway_locals[spec] = model
        return await model.aprepare()

    async def ask_fast(
        self,
        system: str,
        text: str,
        info: CallInfo,
        *,
        temperature: float | None = None,
        max_tokens: int | None = None,
    ) -> FastReply:
        """One call of the ``fast`` alias (recorded in the ledger for ``info``, with the keys
        ``info.owner`` stored), at this temperature and output bound when given; its text,
        and whether it was cut short by the bound."""
        from langchain_core.messages import HumanMessage, SystemMessage

        services = self.services
        book = services.credentials
        credentials = await book.for_owner(info.owner) if book is not None else None
        tune = {"temperature": temperature, "max_tokens": max_tokens}
        reply = await services.models.call(
            "fast",
            [SystemMessage(system), HumanMessage(text)],
            effort="low",
            info=info,
            on_usage=services.recorder.model_call,
            tune={k: v for k, v in tune.items() if v is not None},
            credentials=credentials,
        )
        return FastReply(reply.text, reply.truncated)

    async def summarize(self, transcript: str, most: int, info: CallInfo) -> str:
        """A summary of a conversation excerpt by the ``fast`` alias, in at most ``most``
        tokens (for a conversation too long for its model's window)."""
        from crewchief.knowledge.window import SUMMARY_TEMPERATURE, summary_instructions

        reply = await self.ask_fast(
            summary_instructions(most),
            transcript,
            info,
            temperature=SUMMARY_TEMPERATURE,
            max_tokens=most,
        )
        return reply.text

    async def record_call(self, record: CallRecord) -> None:
        """Add one model call made outside any operation (a gateway call) to the ledger."""
        await self.services.recorder.model_call(record)

    async def key_info(self, key_id: str) -> ApiKeyInfo | None:
        """The API key with this id (revoked or not), or None."""
        return await api_keys.get_key(self._store(), key_id)

    async def verify_key(self, secret: str) -> ApiKeyInfo | None:
        """The active API key with this secret, or None (unknown, revoked or malformed)."""
        return await api_keys.verify_key(self._store(), secret)

    async def ping(self) -> None:
        """Raise if the app database cannot be reached."""
        await self._store().read(lambda tx: tx.one("SELECT 1"))

    async def cluster_stats(self) -> ClusterStats:
        """What the database says about the deployment: open operations, and in scaled mode
        the queue and the workers (the cluster-wide gauges of ``/metrics``)."""
        ops = await repository.open_operation_counts(self._store())
        runner = self._runner
        if isinstance(runner, QueueExecutor):
            depth, oldest, alive = await runner.queue_stats()
            return ClusterStats(ops, depth, oldest, alive)
        return ClusterStats(ops)

    def _store(self) -> Any:
        store = self.services.store
        if store is None:
            raise OperationNotFound("this instance does not persist operations")
        return store

    def run_sync(self, request: str, **kwargs: Any) -> OperationResult:
        """Blocking :meth:`run` for scripts: opens, runs and closes."""

        async def main() -> OperationResult:
            async with self:
                return await self.run(request, **kwargs)

        return asyncio.run(main())


__all__ = [
    "Crewchief",
    "InvalidRequest",
    "OperationHandle",
    "OperationNotFound",
    "validate_request",
]
