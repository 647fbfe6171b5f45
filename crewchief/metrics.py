"""Prometheus metrics: what every process counts, and how ``/metrics`` exposes it.

Two ways to collect them across processes (docs/observability.md):

- **One scrape per machine** (prometheus-client's multiprocess mode): when
  ``PROMETHEUS_MULTIPROC_DIR`` names a directory, every process writes its
  metrics there and any API instance's ``/metrics`` adds them up.
  ``crewchief serve --workers N`` sets this up for itself and its workers.
- **One scrape per process** otherwise: each API instance serves its own
  ``/metrics``, and each worker serves its own on ``--metrics-port``; Prometheus
  sums them (``sum by (...)``).

The cluster-wide gauges (operations by status, queue depth, workers alive) are
read from the database when ``/metrics`` is scraped, so every API instance
reports the same values: dashboards take ``max`` of them, not ``sum``.

prometheus-client is imported on first use, not on import of this module: its
multiprocess mode is chosen by the environment when it is first imported, and
``crewchief serve --workers`` sets the environment after start-up.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# Seconds: fast-path runs take milliseconds, planned ones minutes, reviews hours.
_RUN_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900)
_CALL_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)
_WAIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class Metrics:
    """The process's metrics (see :func:`get`)."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        # -- HTTP -------------------------------------------------------------------------
        self.http_requests = Counter(
            "crewchief_http_requests",
            "HTTP requests answered, by route template and status code.",
            ["method", "route", "status"],
        )
        self.http_duration = Histogram(
            "crewchief_http_request_duration_seconds",
            "Time to answer an HTTP request (for a stream: until its headers).",
            ["method", "route"],
            buckets=_WAIT_BUCKETS,
        )
        # -- operations -------------------------------------------------------------------
        self.operations_finished = Counter(
            "crewchief_operations_finished",
            "Operations that ended, by route and final status.",
            ["route", "status"],
        )
        self.operation_duration = Histogram(
            "crewchief_operation_duration_seconds",
            "Operation wall time from creation to its end (includes waits for plan approval).",
            ["route", "status"],
            buckets=_RUN_BUCKETS,
        )
        self.runs_active = Gauge(
            "crewchief_runs_active",
            "Operation runs executing in this process right now.",
            multiprocess_mode="livesum",
        )
        self.run_duration = Histogram(
            "crewchief_run_duration_seconds",
            "Time one run executed in this process, by how it stopped"
            " (stopped: ended or waits for a decision; cancelled; failed; handed_back; lost).",
            ["outcome"],
            buckets=_RUN_BUCKETS,
        )
        self.takeovers = Counter(
            "crewchief_operation_takeovers",
            "Runs continued from a checkpoint by another run, by why: crash (the process running"
            " it died), handback (a stopping worker gave it back), manual (ops resume).",
            ["reason"],
        )
        self.handbacks = Counter(
            "crewchief_worker_handbacks",
            "Runs a stopping worker handed back to the queue.",
        )
        self.task_duration = Histogram(
            "crewchief_task_duration_seconds",
            "Time from a task's start to its end, by outcome (completed, failed).",
            ["status"],
            buckets=_RUN_BUCKETS,
        )
        # -- models -----------------------------------------------------------------------
        self.model_calls = Counter(
            "crewchief_model_calls",
            "Model call attempts, by alias, model and outcome (ok, error).",
            ["alias", "model", "outcome"],
        )
        self.model_tokens = Counter(
            "crewchief_model_tokens",
            "Tokens of model calls, by alias, model and kind (input, output, reasoning).",
            ["alias", "model", "kind"],
        )
        self.model_duration = Histogram(
            "crewchief_model_call_duration_seconds",
            "Duration of one model call attempt.",
            ["alias", "model"],
            buckets=_CALL_BUCKETS,
        )
        self.mcp_calls = Counter(
            "crewchief_mcp_tool_calls",
            "MCP tool calls, by server and outcome (ok, tool_error, timeout, disconnected,"
            " unavailable, start_failed, error).",
            ["server", "outcome"],
        )
        self.mcp_duration = Histogram(
            "crewchief_mcp_tool_call_duration_seconds",
            "Duration of one MCP tool call, including a server's start when it needed one.",
            ["server"],
            buckets=_CALL_BUCKETS,
        )
        # -- queue ------------------------------------------------------------------------
        self.queue_wait = Histogram(
            "crewchief_queue_wait_seconds",
            "Time an operation's job waited in the queue before a worker started it.",
            buckets=_WAIT_BUCKETS,
        )
        # -- streams and the event bus -----------------------------------------------------
        self.sse_clients = Gauge(
            "crewchief_sse_clients",
            "Event streams open to clients right now.",
            multiprocess_mode="livesum",
        )
        self.bus_degraded = Gauge(
            "crewchief_event_bus_degraded",
            "1 while Redis is unreachable and events travel by database polling.",
            multiprocess_mode="livemax",
        )
        self.bus_fallbacks = Counter(
            "crewchief_event_bus_fallbacks",
            "Times the event bus lost Redis and fell back to database polling.",
        )


_lock = threading.Lock()
_metrics: Metrics | None = None


def get() -> Metrics:
    """The process's metrics, created on first use."""
    global _metrics
    if _metrics is None:
        with _lock:
            if _metrics is None:
                _metrics = Metrics()
    return _metrics


def multiprocess() -> bool:
    """Whether this process writes its metrics for a per-machine scrape."""
    return bool(os.environ.get(MULTIPROC_ENV))


@dataclass(frozen=True)
class ClusterStats:
    """What the database says about the whole deployment, read at scrape time.

    ``operations``: ``{(status, route): count}`` of operations not yet ended.
    ``queue``: ``{status: count}`` of jobs waiting (todo) and running (doing), None
    without a queue; ``oldest_wait_s``: age of the oldest waiting job;
    ``workers``: workers that beat recently.
    """

    operations: dict[tuple[str, str], int]
    queue: dict[str, int] | None = None
    oldest_wait_s: float = 0.0
    workers: int | None = None


def _cluster_families(stats: ClusterStats) -> Iterable[Any]:
    from prometheus_client.core import GaugeMetricFamily

    ops = GaugeMetricFamily(
        "crewchief_operations",
        "Operations not yet ended, by status and route (from the database; same on every"
        " instance).",
        labels=["status", "route"],
    )
    for (status, route), n in sorted(stats.operations.items()):
        ops.add_metric([status, route], n)
    yield ops
    if stats.queue is not None:
        depth = GaugeMetricFamily(
            "crewchief_queue_jobs",
            "Operation jobs in the queue, by status (todo: waiting; doing: on a worker).",
            labels=["status"],
        )
        for status in ("todo", "doing"):
            depth.add_metric([status], stats.queue.get(status, 0))
        yield depth
        yield GaugeMetricFamily(
            "crewchief_queue_oldest_wait_seconds",
            "Age of the oldest job still waiting for a worker (0 when none waits).",
            value=stats.oldest_wait_s,
        )
    if stats.workers is not None:
        yield GaugeMetricFamily(
            "crewchief_workers_alive",
            "Workers whose heartbeat is recent.",
            value=stats.workers,
        )


class _Families:
    def __init__(self, families: list[Any]):
        self._families = families

    def collect(self) -> list[Any]:
        return self._families


def exposition(stats: ClusterStats | None = None) -> bytes:
    """The text for ``/metrics``: this process's metrics (or, in multiprocess mode, the
    machine's), plus the cluster-wide gauges of ``stats``."""
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    get()
    if multiprocess():
        from prometheus_client import multiprocess as mp

        machine = CollectorRegistry()
        mp.MultiProcessCollector(machine)
        text = generate_latest(machine)
    else:
        text = generate_latest(REGISTRY)  # with the process and platform collectors
    if stats is not None:
        cluster = CollectorRegistry()
        cluster.register(_Families(list(_cluster_families(stats))))
        text += generate_latest(cluster)
    return text


def process_dead(pid: int) -> None:
    """Drop a dead process's live gauges (multiprocess mode; its counters stay)."""
    if multiprocess():
        from prometheus_client import multiprocess as mp

        mp.mark_process_dead(pid)


def serve_http(port: int, host: str = "0.0.0.0") -> Any:
    """Serve this process's metrics on ``port`` in a thread (workers, per-process scrape)."""
    from prometheus_client import start_http_server

    get()
    server, thread = start_http_server(port, addr=host)
    return server


# -- what the recorders report ----------------------------------------------------------

_task_started: dict[str, dict[int, float]] = {}


def model_call(alias: str, model: str, usage: Any, duration_ms: float, error: str | None) -> None:
    """One model call attempt: its outcome, tokens and duration."""
    m = get()
    m.model_calls.labels(alias, model, "error" if error else "ok").inc()
    for kind in ("input", "output", "reasoning"):
        n = getattr(usage, kind, 0)
        if n:
            m.model_tokens.labels(alias, model, kind).inc(n)
    m.model_duration.labels(alias, model).observe(duration_ms / 1000)


def mcp_call(server: str, outcome: str, seconds: float) -> None:
    """One MCP tool call: its outcome and duration."""
    m = get()
    m.mcp_calls.labels(server, outcome).inc()
    m.mcp_duration.labels(server).observe(seconds)


def operation_finished(route: str | None, status: str, seconds: float | None) -> None:
    m = get()
    route = route or "none"
    m.operations_finished.labels(route, status).inc()
    if seconds is not None and seconds >= 0:
        m.operation_duration.labels(route, status).observe(seconds)


def task_started(op: str, seq: int) -> None:
    _task_started.setdefault(op, {})[seq] = time.monotonic()


def task_ended(op: str, seq: int, status: str) -> None:
    """A task ended here; timed when it also started in this process."""
    t0 = _task_started.get(op, {}).pop(seq, None)
    if t0 is not None:
        get().task_duration.labels(status).observe(time.monotonic() - t0)


def forget(op: str) -> None:
    """The operation's run stopped in this process: drop its task clocks."""
    _task_started.pop(op, None)
