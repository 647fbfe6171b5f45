"""Run operations in-process: the library's entry point and what the CLI uses.

Example::

    from crewchief import Crewchief

    async with Crewchief() as cc:
        result = await cc.run("add a docstring to every function", workspace="./src")
        print(result.answer)
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from langgraph.types import Command

from crewchief.client._steer import SteeringMixin
from crewchief.client.validate import (
    InvalidRequest,
    validate_models,
    validate_request,
)
from crewchief.config import Settings, load_settings
from crewchief.db import repository
from crewchief.db.checkpoint import checkpointer as _checkpointer
from crewchief.errors import (
    OperationNotFound,
    OperationStateError,
)
from crewchief.events import Event, Subscription
from crewchief.graphs.operation import build_operation_graph
from crewchief.models.registry import ModelOverride
from crewchief.results import TERMINAL_STATUSES, OperationResult, OperationSummary
from crewchief.runtime.services import Services, simplicity_detector
from crewchief.simplicity.detector import Decision
from crewchief.state import OperationContext, OperationInput


class OperationHandle:
    """A running operation: its id, its live events, its result, and a way to stop it."""

    def __init__(self, chief: Crewchief, operation_id: str, task: asyncio.Task, sub: Subscription):
        self.id = operation_id
        self._chief = chief
        self._task = task
        self._sub = sub
        # Set by Crewchief.rerun_task: {"task", "version", "dependents"}.
        self.rerun: dict[str, Any] | None = None

    def detach(self) -> None:
        """Stop collecting live events for this handle (the run goes on)."""
        self._sub.close()

    async def events(self) -> AsyncIterator[Event]:
        """Events from the start of this run until (and including) the terminal one."""
        try:
            async for event in self._sub:
                yield event
                if event.terminal:
                    return
        finally:
            self._sub.close()

    async def wait(self) -> OperationResult:
        """Wait for the run to end (completed, failed or cancelled) and return it."""
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(self._task)
        self._sub.close()
        return await self._chief.get(self.id)

    async def cancel(self) -> OperationResult:
        """Stop the run promptly; the operation ends ``cancelled``."""
        self._task.cancel()
        return await self.wait()

    @property
    def done(self) -> bool:
        return self._task.done()


class Crewchief(SteeringMixin):
    """Runs, streams, resumes and inspects operations in this process.

    Args:
        settings: Configuration; default :func:`crewchief.load_settings`.
        models: Rebind aliases for this instance: ``{"orchestrator": "openai:gpt-5"}``
            or a chat model instance such as :class:`crewchief.FakeChatModel`.
        **overrides: Settings fields to override (e.g. ``home=...``).

    Use it as an async context manager, or call :meth:`open` and :meth:`close`.
    """

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        models: Mapping[str, ModelOverride] | None = None,
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
        self._graph = None
        self._runs: dict[str, asyncio.Task] = {}
        # Owners of the runs this instance started (an operation's owner never changes).
        self._owners: dict[str, str | None] = {}

    # -- lifecycle -----------------------------------------------------------------------

    async def open(self) -> Crewchief:
        """Open the database (upgrading it), the checkpointer and compile the graph."""
        if self._stack is not None:
            return self
        stack = contextlib.AsyncExitStack()
        try:
            self._services = await Services.open(self.settings, models=self._model_overrides)
            stack.push_async_callback(self._services.close)
            self._services.models.check()
            checkpointer = await stack.enter_async_context(_checkpointer(self.settings))
            self._graph = build_operation_graph(self.settings).compile(checkpointer=checkpointer)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def close(self) -> None:
        """Cancel runs still going (they end ``cancelled``) and release resources."""
        for task in list(self._runs.values()):
            task.cancel()
        if self._runs:
            await asyncio.gather(*self._runs.values(), return_exceptions=True)
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = None

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
    ) -> OperationHandle:
        """Create the operation and start running it in the background.

        Args:
            approve_plan: Stop after planning (status ``awaiting_approval``) until
                :meth:`review_plan` is called.
            models: Rebind aliases for this operation only: ``{"delegate": "openai:gpt-4.1-mini"}``.
            owner: Who the operation belongs to (the REST API's key owner).

        Raises:
            InvalidRequest: a field is invalid (nothing is recorded or run).
        """
        request, ws = validate_request(request, workspace, route)
        models = validate_models(models, self.settings)
        # Routed now, so the route is stored with the operation and the run knows its path.
        decision = (await simplicity_detector(self.settings)).decide(request, force=route)
        options: dict[str, Any] = {}
        if approve_plan:
            options["approve_plan"] = True
        if models:
            options["models"] = models
        op = operation_id or str(uuid.uuid4())
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
                options=options,
                decision=decision,
            )
        except BaseException:
            sub.close()
            raise
        payload: OperationInput = {
            "request": request,
            "operation_id": op,
            "workspace": ws,
            "forced_route": route,
            "approve_plan": approve_plan,
        }
        handle = self._launch(op, payload, ws, options, sub, decision)
        self._owners[op] = owner
        return handle

    def _launch(
        self,
        op: str,
        payload: OperationInput | Command | None,
        workspace: str | None,
        options: dict[str, Any] | None,
        sub: Subscription | None = None,
        decision: Decision | None = None,
    ) -> OperationHandle:
        sub = sub or self.services.bus.subscribe(op)
        task = asyncio.create_task(
            self._execute(op, payload, workspace, options or {}, decision),
            name=f"crewchief-op-{op}",
        )
        self._runs[op] = task
        return OperationHandle(self, op, task, sub)

    async def _execute(
        self,
        op: str,
        payload: OperationInput | Command | None,
        workspace: str | None,
        options: dict[str, Any],
        decision: Decision | None = None,
    ) -> None:
        services = self.services
        # Parallelism is bounded by the per-operation task slots (settings.max_parallel_tasks).
        models = options.get("models") or {}
        context = OperationContext(
            workspace=workspace, **{f"{alias}_model": spec for alias, spec in models.items()}
        )
        context._services = services
        config = {
            "configurable": {"thread_id": op},
            "recursion_limit": 20 + 3 * self.settings.max_plan_tasks,
        }
        try:
            if isinstance(payload, dict) and await self._routes_fast(payload, context, decision):
                # A fast-path run is checkpointed once, when it ends: after a crash it is
                # simply run again, which costs the same single model call. Should it fall
                # back to planning it stops before the plan node (saving that checkpoint) and
                # goes on with a checkpoint after every step.
                out = await self._graph.ainvoke(
                    payload, config, context=context, durability="exit", interrupt_before=["plan"]
                )
                if out.get("status") not in TERMINAL_STATUSES:
                    snapshot = await self._graph.aget_state(config)
                    if snapshot.next == ("plan",) and not snapshot.interrupts:
                        await self._graph.ainvoke(None, config, context=context)
            else:
                await self._graph.ainvoke(payload, config, context=context)
        except asyncio.CancelledError:
            await services.recorder.finish(op, "cancelled", error="cancelled")
        except Exception as exc:  # noqa: BLE001 - recorded on the operation
            await services.recorder.finish(op, "failed", error=str(exc) or type(exc).__name__)
        finally:
            services.release(op)
            self._runs.pop(op, None)
            self._owners.pop(op, None)

    async def _routes_fast(
        self, payload: OperationInput, context: OperationContext, decision: Decision | None
    ) -> bool:
        """Whether a new run takes the fast path (detect_simplicity reuses the decision)."""
        request, forced = payload["request"].strip(), payload.get("forced_route")
        if decision is None:  # a run started over by resume
            decision = (await simplicity_detector(self.settings)).decide(request, force=forced)
        context._decision = (request, forced, decision)
        return decision.route == "fast"

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
        current = await self.get(operation_id)
        if current.finished:
            raise OperationStateError(f"operation {operation_id} already ended ({current.status})")
        if operation_id in self._runs:
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
            }
        elif snapshot.interrupts:
            raise OperationStateError(
                f"operation {operation_id} waits for a plan decision: use review_plan"
            )
        sub = self.services.bus.subscribe(operation_id)
        await self.services.recorder.operation_resumed(operation_id)
        return self._launch(operation_id, payload, current.workspace, current.options, sub)

    async def cancel(self, operation_id: str) -> OperationResult:
        """Cancel an operation running in this process (idempotent for ended ones)."""
        task = self._runs.get(operation_id)
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
            return await self.get(operation_id)
        current = await self.get(operation_id)
        if not current.finished:
            await self.services.recorder.finish(operation_id, "cancelled", error="cancelled")
            current = await self.get(operation_id)
        return current

    # -- reading ---------------------------------------------------------------------------

    def running_owner(self, operation_id: str) -> tuple[bool, str | None]:
        """``(True, owner)`` while an operation started here is running, else ``(False, None)``.

        Lets a caller skip a database read for the common case of following an
        operation just started.
        """
        if operation_id in self._owners and operation_id in self._runs:
            return True, self._owners[operation_id]
        return False, None

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
    ) -> list[OperationSummary]:
        """Operations, newest first; ``before`` is ``(created_at, id)`` of the previous page's last."""
        return await repository.list_operations(
            self.services.store, status=status, limit=limit, before=before, owner=owner
        )

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
