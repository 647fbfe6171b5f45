"""Scaled mode, API side: runs are jobs on the queue, executed by ``crewchief worker``.

Launching defers a job and returns a future that resolves when the operation
stops (it ended, or waits for a plan decision), wherever it ran. Cancelling
aborts the operation's job: the worker running it cancels the run at once (the
queue tells it through LISTEN/NOTIFY). Closing an API instance leaves the
operations running on the workers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from crewchief import logs
from crewchief._aio import cancel_all
from crewchief.db import leases, repository
from crewchief.errors import OperationBusy
from crewchief.events import Notice
from crewchief.executor import jobs
from crewchief.runtime.leases import dead_here
from crewchief.runtime.services import Services
from crewchief.state import OperationInput

log = logging.getLogger(__name__)

# An operation in one of these statuses stopped running (for now: a plan waits for a decision).
_STOPPED = ("completed", "failed", "cancelled", "rejected", "awaiting_approval")
# How long a claim waits for a job whose run has recorded its stop to finish.
_SETTLE_S = 5.0
# A waiter reads the status on every stop event or notice, and this often regardless.
_RECHECK_S = 10.0
_STOP_EVENTS = (
    "operation.completed",
    "operation.failed",
    "operation.cancelled",
    "operation.rejected",
    "plan.awaiting_approval",
)


class QueueExecutor:
    """Defers runs to the queue and follows them until they stop."""

    leases = None
    holder = None
    lease_seconds = 0.0

    def __init__(self, services: Services, app: Any, sync_app: Any = None):
        self._services = services
        self._app = app
        self._sync_app = sync_app  # defers on the writer's connection (see with_record)
        self._early: dict[str, Any] = {}  # subscriptions opened before a job was recorded
        self._waiting: dict[str, asyncio.Task[None]] = {}

    async def claim(self, operation_id: str) -> None:
        """Refuse when a live process or a queued job already runs the operation.

        A job whose run already recorded where it stopped (its end, or a wait for a plan
        decision) is about to finish: that is waited for (a few seconds at most), not refused.
        """
        store = self._services.store
        assert store is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + _SETTLE_S
        while await jobs.active_jobs(self._app, operation_id):
            head = await repository.operation_head(store, operation_id)
            if head is None or head[1] not in _STOPPED or loop.time() > deadline:
                raise OperationBusy(f"operation {operation_id} is queued or running on a worker")
            await asyncio.sleep(0.05)
        held = await leases.holder_of(store, operation_id)
        if held is not None and not dead_here(held.holder):
            raise OperationBusy(
                f"operation {operation_id} is running in another process ({held.holder})"
            )

    async def unclaim(self, operation_id: str) -> None:
        early = self._early.pop(operation_id, None)
        if early is not None:  # the operation was not recorded after all
            early.close()

    def with_record(
        self, operation_id: str, payload: OperationInput, options: dict[str, Any]
    ) -> Any:
        """Enqueue the new operation's job in the transaction that records it."""
        if self._sync_app is None:
            return None
        run = self._run_args(payload)
        # The job can run as soon as the record commits: the waiter must already listen.
        self._early[operation_id] = self._services.bus.subscribe(operation_id)

        def defer(tx: Any) -> None:
            jobs.defer_on(self._sync_app, tx.cur.connection, operation_id, run, options)

        return defer

    async def launch(
        self,
        operation_id: str,
        payload: OperationInput | Any | None,
        options: dict[str, Any],
        *,
        created: bool = False,
    ) -> asyncio.Task[None]:
        # Subscribed before the job runs, so no stop event can come before the waiter.
        early = self._early.pop(operation_id, None) if created else None
        sub = early or self._services.bus.subscribe(operation_id)
        try:
            if early is None:  # else the job was recorded with the operation
                await self._defer(operation_id, payload, options)
        except BaseException:
            sub.close()
            raise
        waiter = asyncio.create_task(
            self._until_stopped(operation_id, sub, fresh=created), name=f"wait-{operation_id}"
        )
        self._waiting[operation_id] = waiter
        waiter.add_done_callback(lambda _: self._waiting.pop(operation_id, None))
        return waiter

    async def _defer(
        self, operation_id: str, payload: OperationInput | Any | None, options: dict[str, Any]
    ) -> None:
        await self._app.configure_task(
            jobs.TASK, queue=jobs.QUEUE, lock=f"op:{operation_id}"
        ).defer_async(operation_id=operation_id, run=self._run_args(payload), options=options)

    @staticmethod
    def _run_args(payload: OperationInput | Any | None) -> dict[str, Any]:
        # When it was deferred (the queue-wait metric) and for which request (log lines).
        return {
            **jobs.encode(payload),
            "deferred_at": time.time(),
            "request_id": logs.request_id.get(),
        }

    def running(self, operation_id: str) -> bool:
        return operation_id in self._waiting

    async def cancel(self, operation_id: str) -> bool:
        """Abort the operation's jobs; record the cancel for a job no worker had started."""
        found = await jobs.active_jobs(self._app, operation_id)
        for job_id, status in found:
            await self._app.job_manager.cancel_job_by_id_async(job_id, abort=True)
            if status == "todo":
                await self._services.recorder.finish(operation_id, "cancelled", error="cancelled")
        if found:
            # The worker records the end; wait for it (bounded: a worker that died meanwhile
            # leaves the job to the stalled-job check).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(10):
                    await self._until_stopped(
                        operation_id, self._services.bus.subscribe(operation_id)
                    )
        return bool(found)

    async def queue_stats(self) -> tuple[dict[str, int], float, int]:
        """``({status: jobs}, oldest wait in seconds, workers alive)`` (see jobs.queue_stats)."""
        async with self._app.connector.pool.connection() as conn:
            return await jobs.queue_stats(conn)

    async def settle(self, operation_id: str) -> None:
        waiter = self._waiting.get(operation_id)
        if waiter is not None:
            await asyncio.wait({waiter})

    async def close(self) -> None:
        """Stop following; the runs go on on the workers."""
        await cancel_all(list(self._waiting.values()))

    async def _until_stopped(self, operation_id: str, sub: Any, *, fresh: bool = False) -> None:
        """Return when the operation's stored status says its run stopped.

        A stop event says so (the run stored it with the status it reports). The status is
        read when a notice of events stored elsewhere arrives, and every ``_RECHECK_S`` in
        case a message was lost; ``fresh``: the run was just created, so the first read is
        left out (``sub`` was open before its job).
        """
        store = self._services.store
        assert store is not None
        try:
            while True:
                if not fresh:
                    head = await repository.operation_head(store, operation_id)
                    if head is None or head[1] in _STOPPED:
                        return
                fresh = False
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_RECHECK_S):
                        while True:
                            item = await sub.queue.get()
                            if isinstance(item, Notice):
                                break  # events were stored elsewhere: look again
                            if item.type in _STOP_EVENTS:
                                # Stored with the status it reports, before it was published.
                                return
        finally:
            sub.close()
