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

from crewchief.config import Settings, load_settings
from crewchief.db import repository
from crewchief.errors import CrewchiefError, OperationNotFound, OperationStateError
from crewchief.events import Event, Subscription
from crewchief.graphs.operation import build_operation_graph
from crewchief.graphs.state import OperationContext, OperationInput
from crewchief.models.registry import ModelOverride
from crewchief.schemas import OperationResult, OperationSummary
from crewchief.services import Services

MAX_REQUEST_CHARS = 100_000


class InvalidRequest(CrewchiefError):
    """A field of a new operation is invalid; the message names the field."""

    code = "invalid_request"


def validate_request(request: Any, workspace: Any, route: Any) -> tuple[str, str | None]:
    """Check a new operation's fields before anything runs.

    Returns:
        The stripped request and the workspace as an absolute path (or None).
    """
    if not isinstance(request, str) or not request.strip():
        raise InvalidRequest("request: expected a non-empty string")
    if len(request) > MAX_REQUEST_CHARS:
        raise InvalidRequest(
            f"request: expected at most {MAX_REQUEST_CHARS} characters, got {len(request)}"
        )
    if route not in (None, "fast", "plan"):
        raise InvalidRequest(f"route: expected 'fast', 'plan' or null, got {route!r}")
    if workspace is None:
        return request.strip(), None
    path = Path(workspace).expanduser()
    if not path.is_dir():
        raise InvalidRequest(f"workspace: expected an existing directory, got {str(workspace)!r}")
    return request.strip(), str(path.resolve())


class OperationHandle:
    """A running operation: its id, its live events, its result, and a way to stop it."""

    def __init__(self, chief: Crewchief, operation_id: str, task: asyncio.Task, sub: Subscription):
        self.id = operation_id
        self._chief = chief
        self._task = task
        self._sub = sub

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


class Crewchief:
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
    ) -> OperationHandle:
        """Create the operation and start running it in the background.

        Raises:
            InvalidRequest: a field is invalid (nothing is recorded or run).
        """
        request, ws = validate_request(request, workspace, route)
        op = operation_id or str(uuid.uuid4())
        # Subscribe first so the handle's events start with operation.started.
        sub = self.services.bus.subscribe(op)
        try:
            await self.services.recorder.create_operation(
                operation_id=op, request=request, workspace=ws, route=route, metadata=metadata
            )
        except BaseException:
            sub.close()
            raise
        payload: OperationInput = {
            "request": request,
            "operation_id": op,
            "workspace": ws,
            "forced_route": route,
        }
        return self._launch(op, payload, ws, sub)

    def _launch(
        self,
        op: str,
        payload: OperationInput | None,
        workspace: str | None,
        sub: Subscription | None = None,
    ) -> OperationHandle:
        sub = sub or self.services.bus.subscribe(op)
        task = asyncio.create_task(self._execute(op, payload, workspace), name=f"crewchief-op-{op}")
        self._runs[op] = task
        return OperationHandle(self, op, task, sub)

    async def _execute(
        self, op: str, payload: OperationInput | None, workspace: str | None
    ) -> None:
        services = self.services
        # Parallelism is bounded by the per-operation task slots (settings.max_parallel_tasks).
        context = OperationContext(workspace=workspace)
        context._services = services
        config = {
            "configurable": {"thread_id": op},
            "recursion_limit": 20 + 3 * self.settings.max_plan_tasks,
        }
        try:
            await self._graph.ainvoke(payload, config, context=context)
        except asyncio.CancelledError:
            await services.recorder.finish(op, "cancelled", error="cancelled")
        except Exception as exc:  # noqa: BLE001 - recorded on the operation
            await services.recorder.finish(op, "failed", error=str(exc) or type(exc).__name__)
        finally:
            services.release(op)
            self._runs.pop(op, None)

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
            }
        sub = self.services.bus.subscribe(operation_id)
        await self.services.recorder.operation_resumed(operation_id)
        return self._launch(operation_id, payload, current.workspace, sub)

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

    async def get(self, operation_id: str, *, events: bool = False) -> OperationResult:
        """An operation as stored. Raises :class:`OperationNotFound` for unknown ids."""
        store = self.services.store
        if store is None:
            raise OperationNotFound("this instance does not persist operations")
        return await repository.get_operation(store, operation_id, include_events=events)

    async def list(self, *, status: str | None = None, limit: int = 20) -> list[OperationSummary]:
        """Operations, newest first."""
        return await repository.list_operations(self.services.store, status=status, limit=limit)

    def run_sync(self, request: str, **kwargs: Any) -> OperationResult:
        """Blocking :meth:`run` for scripts: opens, runs and closes."""

        async def main() -> OperationResult:
            async with self:
                return await self.run(request, **kwargs)

        return asyncio.run(main())


@contextlib.asynccontextmanager
async def _checkpointer(settings: Settings) -> AsyncIterator[Any]:
    """LangGraph's SQLite saver (WAL) by default, the Postgres saver for Postgres URLs."""
    target = settings.resolved_checkpoint_url
    if target.startswith("postgres"):
        try:
            from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
        except ImportError:
            raise CrewchiefError(
                "PostgreSQL checkpoints need: pip install 'crewchief[postgres]'"
            ) from None
        async with AsyncPostgresSaver.from_conn_string(target) as saver:
            await saver.setup()
            yield saver
        return
    import aiosqlite
    from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

    Path(target).expanduser().parent.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 - once, at open
    conn = await aiosqlite.connect(target)
    try:
        await conn.execute("PRAGMA synchronous=NORMAL")
        saver = AsyncSqliteSaver(conn)
        await saver.setup()
        yield saver
    finally:
        await conn.close()


__all__ = [
    "Crewchief",
    "InvalidRequest",
    "OperationHandle",
    "OperationNotFound",
    "validate_request",
]
