"""Embedded mode: each operation runs as an asyncio task in this process."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from crewchief.graphs.operation import invoke_operation
from crewchief.runtime.deps import RunContext
from crewchief.runtime.services import Services
from crewchief.state import OperationInput


class InProcessExecutor:
    """Runs operations on a compiled graph as asyncio tasks of the current event loop."""

    def __init__(self, services: Services, graph: Any):
        self._services = services
        self._graph = graph
        self._runs: dict[str, asyncio.Task[None]] = {}

    def launch(
        self, operation_id: str, payload: OperationInput | Any | None, options: dict[str, Any]
    ) -> asyncio.Task[None]:
        task = asyncio.create_task(
            self._execute(operation_id, payload, options), name=f"crewchief-op-{operation_id}"
        )
        self._runs[operation_id] = task
        return task

    def running(self, operation_id: str) -> bool:
        return operation_id in self._runs

    async def cancel(self, operation_id: str) -> bool:
        task = self._runs.get(operation_id)
        if task is None:
            return False
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)
        return True

    async def settle(self, operation_id: str) -> None:
        task = self._runs.get(operation_id)
        if task is not None:
            await asyncio.wait({task})

    async def close(self) -> None:
        runs = list(self._runs.values())
        for task in runs:
            task.cancel()
        if runs:
            await asyncio.gather(*runs, return_exceptions=True)

    async def _execute(
        self, op: str, payload: OperationInput | Any | None, options: dict[str, Any]
    ) -> None:
        services = self._services
        models = options.get("models") or {}
        context = RunContext.open(
            services, **{f"{alias}_model": spec for alias, spec in models.items()}
        )
        config = {
            "configurable": {"thread_id": op},
            "recursion_limit": 20 + 3 * services.settings.max_plan_tasks,
        }
        try:
            await invoke_operation(self._graph, payload, config, context)
        except asyncio.CancelledError:
            await services.recorder.finish(op, "cancelled", error="cancelled")
        except Exception as exc:  # noqa: BLE001 - recorded on the operation
            await services.recorder.finish(op, "failed", error=str(exc) or type(exc).__name__)
        finally:
            services.release(op)
            self._runs.pop(op, None)
