"""``crewchief worker``: runs the queue's operation jobs (scaled mode).

A worker opens what a run needs (database, Redis bus, models, the Postgres
checkpointer, the compiled graph) and runs each job with the in-process
executor, holding the operation's run lease meanwhile.

- **Killed (SIGKILL):** its heartbeat stops. Every worker looks every
  ``REAP_EVERY_S`` for jobs whose worker has not beaten for ``STALLED_AFTER_S``
  (one of them at a time, under an advisory lock) and puts them back on the queue;
  the next worker continues the operation from its last checkpoint.
- **Stopped (SIGTERM):** it takes no more jobs; each running operation finishes
  the tasks of the step it is in (up to ``drain_seconds``; the worker keeps
  beating meanwhile), stops there, and its job goes back on the queue with its
  lease released, for another worker to continue from that checkpoint. The
  operation stays ``running``.
- **Cancelled** (from any API instance): the queue aborts the job, the run stops
  at once and the operation ends ``cancelled``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.types import Command

from crewchief import logs, metrics
from crewchief._aio import cancel_and_wait
from crewchief.config import Settings
from crewchief.db import leases
from crewchief.db.checkpoint import checkpointer, fresh_thread
from crewchief.errors import OperationBusy
from crewchief.executor import jobs
from crewchief.executor.inprocess import InProcessExecutor
from crewchief.graphs.operation import build_operation_graph
from crewchief.results import TERMINAL_STATUSES
from crewchief.runtime.leases import LeaseKeeper
from crewchief.runtime.services import Services

log = logging.getLogger(__name__)

HEARTBEAT_S = 2.0  # how often a worker says it is alive
STALLED_AFTER_S = jobs.WORKER_ALIVE_S  # a worker silent this long is dead: its jobs go back
REAP_EVERY_S = 2.0
DRAIN_S = 20.0  # how long a stopping worker lets running steps finish (a deploy's grace period)
STOP_DEADLINE_S = 30  # a stopping worker that takes longer than drain + this just exits
_REAPER_LOCK = 0x72656170


class Worker:
    """One worker process: a procrastinate worker running operation jobs.

    Args:
        settings: Must name a PostgreSQL database (and, for live streams, Redis).
        concurrency: Operations this worker runs at once.
        name: Shown in the queue's tables and in logs.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        concurrency: int = 4,
        name: str | None = None,
        drain_seconds: float = DRAIN_S,
    ):
        self.settings = settings
        self.concurrency = concurrency
        self.name = name
        self.drain_seconds = drain_seconds
        self.app = jobs.queue_app(settings)
        self._executor: InProcessExecutor | None = None
        self._graph: Any = None
        self._services: Services | None = None
        self.app.task(
            name=jobs.TASK,
            queue=jobs.QUEUE,
            pass_context=True,
            # Only a hand-back or a busy lease puts the job back; anything else ends it.
            retry=_retry_strategy(),
        )(self._run_job)

    async def run(self) -> None:
        """Run until SIGTERM or SIGINT; running operations are handed back."""
        async with contextlib.AsyncExitStack() as stack:
            if self.settings.auto_migrate:
                await jobs.upgrade_queue_schema(self.settings)
            services = await Services.open(self.settings)
            stack.push_async_callback(services.close)
            services.models.check()
            saver = await stack.enter_async_context(checkpointer(self.settings))
            self._graph = build_operation_graph(self.settings).compile(checkpointer=saver)
            keeper = LeaseKeeper(services.store, self.settings.lease_seconds)
            keeper.start()
            stack.push_async_callback(keeper.close)
            self._services = services
            self._executor = InProcessExecutor(services, self._graph, keeper, gated=True)
            self.name = self.name or keeper.holder
            logs.set_worker(self.name)
            await stack.enter_async_context(self.app.open_async())
            worker = asyncio.create_task(
                self.app.run_worker_async(
                    queues=[jobs.QUEUE],
                    name=self.name,
                    concurrency=self.concurrency,
                    install_signal_handlers=False,
                    shutdown_graceful_timeout=0,
                    fetch_job_polling_interval=1.0,
                    abort_job_polling_interval=1.0,
                    update_heartbeat_interval=HEARTBEAT_S,
                    stalled_worker_timeout=30.0,
                ),
                name="crewchief-worker",
            )
            reaper = asyncio.create_task(self._reap_stalled(), name="crewchief-reaper")
            stack.push_async_callback(cancel_and_wait, reaper)
            stopping = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, _on_stop_signal, stopping)
            log.info("worker %s ready (concurrency %d)", self.name, self.concurrency)
            if self.settings.log_format == "text":  # JSON logs have the line above
                print(f"crewchief worker {self.name} ready", flush=True)
            done, _ = await asyncio.wait(
                {worker, asyncio.create_task(stopping.wait())}, return_when=asyncio.FIRST_COMPLETED
            )
            if worker not in done:
                log.info("worker %s stopping: handing its operations back", self.name)
                worker.cancel()  # exactly once: procrastinate treats a second cancel differently
            try:
                async with asyncio.timeout(self.drain_seconds + STOP_DEADLINE_S):
                    with contextlib.suppress(asyncio.CancelledError):
                        await worker
            except TimeoutError:
                limit = self.drain_seconds + STOP_DEADLINE_S
                log.error("worker %s did not stop in %g s: exiting", self.name, limit)
                os._exit(1)  # its jobs go back on the queue through the stalled-job check

    async def _run_job(
        self, context: Any, operation_id: str, run: dict[str, Any], options: dict[str, Any]
    ) -> None:
        from procrastinate.job_context import AbortReason

        assert self._executor is not None and self._services is not None
        logs.operation_id.set(operation_id)
        if context.job.attempts == 0 and "deferred_at" in run:
            metrics.get().queue_wait.observe(max(0.0, time.time() - run["deferred_at"]))
        if run.get("request_id"):
            logs.request_id.set(run["request_id"])  # the request that started or steered it
        payload = await self._payload(operation_id, run, context.job.attempts)
        if payload is _NOTHING:
            return
        store = self._services.store
        # A stopping worker gave its lease up; a dead one left its name on it.
        handed_back = context.job.attempts > 0 and not await leases.last_holder(store, operation_id)
        try:
            await self._executor.claim(operation_id)
        except OperationBusy as exc:
            raise jobs.LeaseBusy(str(exc)) from None  # tried again shortly, nothing recorded
        if context.job.attempts > 0:  # its worker died or stopped: this run takes it over
            await self._services.recorder.operation_resumed(operation_id)
            metrics.get().takeovers.labels("handback" if handed_back else "crash").inc()
        log.info("operation %s: run starts (attempt %d)", operation_id, context.job.attempts + 1)
        if context.job.attempts == 0 and run.get("kind") == "input":
            fresh_thread(operation_id)  # a new operation: no checkpoint to read yet
        task = await self._executor.launch(operation_id, payload, options, claimed=True)
        try:
            outcome = await asyncio.shield(task)
            log.info("operation %s: run %s", operation_id, outcome)
        except asyncio.CancelledError:
            if context.abort_reason() == AbortReason.SHUTDOWN:
                # The queue stopped this worker's heartbeat: beat on while steps finish.
                beat = asyncio.create_task(self._beat(context.job.worker_id))
                try:
                    unfinished = await self._executor.hand_back(
                        operation_id, drain=self.drain_seconds
                    )
                finally:
                    await cancel_and_wait(beat)
                if not unfinished:
                    return  # it ended (or waits for a decision) while its step finished
                metrics.get().handbacks.inc()
                raise jobs.HandBack(operation_id) from None
            await self._executor.cancel(operation_id)  # the operation ends cancelled
            raise

    def add_periodic(self, name: str, cron: str, job: Callable[[], Awaitable[Any]]) -> None:
        """Run ``job`` on the ``cron`` schedule: one worker of the deployment runs it each
        time (the queue defers it once per time for all of them)."""

        async def periodic(timestamp: int) -> None:
            log.info("periodic job %s (scheduled at %d)", name, timestamp)
            await job()

        task = self.app.task(name=f"crewchief.{name}", queue=jobs.QUEUE)(periodic)
        self.app.periodic(cron=cron, periodic_id=name)(task)

    async def _payload(self, operation_id: str, run: dict[str, Any], attempts: int) -> Any:
        """What to invoke the graph with, from the job and the operation's checkpoint.

        A job that runs again (its worker died or stopped) continues from the checkpoint.
        A new operation's first attempt has nothing stored to look at.
        """
        if attempts == 0 and run.get("kind") == "input":
            return run["value"]
        services = self._services
        assert services is not None and services.store is not None
        from crewchief.db import repository

        head = await repository.operation_head(services.store, operation_id)
        if head is None or head[1] in TERMINAL_STATUSES:
            return _NOTHING  # it ended meanwhile (cancelled, or a duplicate job)
        snapshot = await self._graph.aget_state({"configurable": {"thread_id": operation_id}})
        kind = run.get("kind")
        if kind == "input":
            return None if snapshot.values else run["value"]
        if kind == "decision":
            return Command(resume=run["value"]) if snapshot.interrupts else None
        return None

    async def _beat(self, worker_id: int | None) -> None:
        """Keep this worker's heartbeat while it drains (the queue stopped its own)."""
        if worker_id is None:
            return
        while True:
            try:
                await self.app.job_manager.update_heartbeat(worker_id)
            except Exception as exc:  # noqa: BLE001 - the stalled-job check decides
                log.warning("heartbeat while draining failed: %s", exc)
            await asyncio.sleep(HEARTBEAT_S)

    async def _reap_stalled(self) -> None:
        """Put the jobs of dead workers back on the queue (one worker does it at a time)."""
        while True:
            await asyncio.sleep(REAP_EVERY_S)
            try:
                async with self.app.connector.pool.connection() as conn:
                    got = await (
                        await conn.execute("SELECT pg_try_advisory_lock(%s)", (_REAPER_LOCK,))
                    ).fetchone()
                    if not got[0]:
                        continue
                    try:
                        stalled = await self.app.job_manager.get_stalled_jobs(
                            seconds_since_heartbeat=STALLED_AFTER_S, queue=jobs.QUEUE
                        )
                        for job in stalled:
                            log.warning("job %s of a dead worker goes back on the queue", job.id)
                            await self.app.job_manager.retry_job(job)
                    finally:
                        await conn.execute("SELECT pg_advisory_unlock(%s)", (_REAPER_LOCK,))
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - try again next round
                log.warning("stalled-job check failed: %s", exc)


_NOTHING = object()


def _on_stop_signal(stopping: asyncio.Event) -> None:
    """The first SIGTERM/SIGINT stops the worker cleanly; a second one exits at once."""
    if stopping.is_set():
        os._exit(1)
    stopping.set()


def _retry_strategy() -> Any:
    from procrastinate import RetryStrategy

    return RetryStrategy(retry_exceptions=[jobs.HandBack, jobs.LeaseBusy], wait=1)
