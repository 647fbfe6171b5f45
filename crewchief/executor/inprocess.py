"""Embedded mode: each operation runs as an asyncio task in this process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from crewchief import logs, metrics
from crewchief._aio import cancel_all
from crewchief.graphs.operation import StepBoundary, StepGate, invoke_operation
from crewchief.runtime.deps import Payer, RunContext
from crewchief.runtime.leases import LeaseKeeper
from crewchief.runtime.services import Services
from crewchief.state import OperationInput

log = logging.getLogger(__name__)


class InProcessExecutor:
    """Runs operations on a compiled graph as asyncio tasks of the current event loop.

    With ``leases`` (operations persisted in a database), a run holds its operation's
    lease: no other process runs it meanwhile, and if this process dies another one
    takes it over (see :mod:`crewchief.db.leases`).
    """

    def __init__(
        self,
        services: Services,
        graph: Any,
        leases: LeaseKeeper | None = None,
        *,
        gated: bool = False,
    ):
        self._services = services
        self._graph = graph
        self._leases = leases
        self._gated = gated  # runs can be stopped at a step boundary (hand_back's drain)
        self._gates: dict[str, StepGate] = {}
        self._runs: dict[str, asyncio.Task[str]] = {}
        self._lost: set[str] = set()
        self._handed_back: set[str] = set()
        if leases is not None:
            leases.on_lost = self._stop_lost

    @property
    def leases(self) -> LeaseKeeper | None:
        return self._leases

    @property
    def holder(self) -> str | None:
        """This process's lease name, None when runs hold no leases."""
        return self._leases.holder if self._leases is not None else None

    @property
    def lease_seconds(self) -> float:
        return self._leases.seconds if self._leases is not None else 0.0

    async def claim(self, operation_id: str) -> None:
        if self._leases is not None:
            await self._leases.acquire(operation_id)

    async def unclaim(self, operation_id: str) -> None:
        if self._leases is not None and operation_id not in self._runs:
            await self._leases.release(operation_id)

    def with_record(
        self, operation_id: str, payload: OperationInput, options: dict[str, Any]
    ) -> None:
        return None  # nothing to enqueue: the run starts here

    async def launch(
        self,
        operation_id: str,
        payload: OperationInput | Any | None,
        options: dict[str, Any],
        *,
        created: bool = False,
        claimed: bool = False,
    ) -> asyncio.Task[str]:
        """Start a run; ``created``: the operation was just created holding this lease;
        ``claimed``: :meth:`claim` took it just before (a worker's job).

        The task's result says how the run stopped (see :meth:`_execute`).
        """
        if (created or claimed) and self._leases is not None:
            self._leases.adopt(operation_id)
        else:
            await self.claim(operation_id)
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

    async def hand_back(self, operation_id: str, *, drain: float = 0.0) -> bool:
        """Stop the run here without ending the operation, and give its lease up.

        Another process continues it from its last checkpoint (a worker stopping).
        With ``drain`` (seconds; runs launched by a ``gated`` executor) the run first
        finishes the tasks of the step it is in, so nothing it did is done again; one
        still busy after ``drain`` is stopped where it is. Returns False when the run
        ended (or began waiting for a plan decision) meanwhile: nothing to hand back.
        """
        task = self._runs.get(operation_id)
        if task is None:
            return False
        self._lost.add(operation_id)
        self._handed_back.add(operation_id)
        gate = self._gates.get(operation_id)
        if drain > 0 and gate is not None:
            gate.close()
            if not gate.idle:
                await asyncio.wait({task}, timeout=drain)
        if not task.done():
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.shield(task)
        return task.cancelled() or task.result() in ("handed_back", "lost")

    async def settle(self, operation_id: str) -> None:
        task = self._runs.get(operation_id)
        if task is not None:
            await asyncio.wait({task})

    async def close(self) -> None:
        await cancel_all(list(self._runs.values()))

    def _stop_lost(self, operation_id: str) -> None:
        """Another process runs it now, or it was cancelled elsewhere: stop, record nothing."""
        task = self._runs.get(operation_id)
        if task is not None:
            self._lost.add(operation_id)
            task.cancel()

    async def _execute(
        self, op: str, payload: OperationInput | Any | None, options: dict[str, Any]
    ) -> str:
        """Run the operation; how it stopped: ``stopped`` (it ended, or waits for a plan
        decision), ``cancelled``, ``failed``, ``handed_back`` or ``lost`` (another
        process runs it now)."""
        logs.operation_id.set(op)  # this task's own context
        m = metrics.get()
        m.runs_active.inc()
        started = time.perf_counter()
        outcome = "stopped"
        gate = self._gates[op] = StepGate() if self._gated else None
        services = self._services
        models = options.get("models") or {}
        context = RunContext.open(
            services,
            payer=Payer.of(options),
            **{f"{alias}_model": spec for alias, spec in models.items()},
        )
        config = {
            "configurable": {"thread_id": op},
            "recursion_limit": 20 + 3 * services.settings.max_plan_tasks,
        }
        try:
            await invoke_operation(self._graph, payload, config, context, gate)
        except StepBoundary:
            outcome = "handed_back"
            log.info("operation %s: stopped after its current step, for another worker", op)
        except asyncio.CancelledError:
            if op in self._handed_back:
                outcome = "handed_back"
                log.info("operation %s: stopped mid-step, for another worker", op)
            elif op in self._lost:
                outcome = "lost"
                log.info("operation %s: stopped here, its lease is elsewhere", op)
            else:
                outcome = "cancelled"
                await services.recorder.finish(op, "cancelled", error="cancelled")
        except Exception as exc:  # noqa: BLE001 - recorded on the operation
            outcome = "failed"
            log.warning("operation %s failed: %s", op, exc)
            await services.recorder.finish(op, "failed", error=str(exc) or type(exc).__name__)
        finally:
            m.runs_active.dec()
            m.run_duration.labels(outcome).observe(time.perf_counter() - started)
            metrics.forget(op)
            self._gates.pop(op, None)
            services.release(op)
            self._runs.pop(op, None)
            self._lost.discard(op)
            self._handed_back.discard(op)
            if self._leases is not None:
                if outcome == "handed_back":
                    await self._leases.release(op)  # for another process to take at once
                else:
                    # Every other way a run stops wrote its end (or its wait for a plan
                    # decision), and that write gave the lease up; a lost one is not ours.
                    self._leases.forget(op)
        return outcome
