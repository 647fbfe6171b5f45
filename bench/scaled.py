"""Scaled mode under load: API instances and workers on PostgreSQL and Redis, against embedded.

Run from the repository root::

    python -m bench.scaled [--seconds 10] [--clients 20] [--n 100] [--recoveries 3]
                           [--streams 2000] [--json]
    python -m bench.scaled --only throughput|latency|streams|cancel|recovery

The harness creates its own PostgreSQL database and Redis key prefix, starts
``crewchief serve`` and ``crewchief worker`` processes itself, reads the CPU time
of every server-side process (API instances, workers, PostgreSQL, Redis) from
``/proc`` and Redis ``INFO``, and stops what it started by PID at the end. Embedded
mode (one ``crewchief serve`` on SQLite) runs the same operations for comparison.
This is a report, not a test: it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from bench import _scenarios as scenarios
from bench._cluster import (
    COMPONENTS,
    PG_ADMIN_URL,
    REDIS_URL,
    Cluster,
    CpuDelta,
    Meter,
    Postgres,
    Redis,
    Snapshot,
    proc_memory_mb,
    raise_fd_limit,
)
from bench._http import Connection, HttpError
from bench.server import ServerProcess, render_table, run_async
from bench.server import build_report as server_report

SCENARIOS = ("latency", "throughput", "streams", "cancel", "recovery")
# key → (bound, target); keys not listed are informational.
TARGETS: dict[str, tuple[str, float]] = {
    "latency_scaled_first_event_p50_ms": ("≤", 25.0),
    "latency_embedded_errors": ("≤", 0),
    "latency_scaled_errors": ("≤", 0),
    "throughput_scaled_1w_cpu_ratio": ("≤", 1.5),
    "throughput_scaled_2w_cpu_ratio": ("≤", 1.5),
    "throughput_embedded_errors": ("≤", 0),
    "throughput_scaled_1w_errors": ("≤", 0),
    "throughput_scaled_2w_errors": ("≤", 0),
    "streams_event_latency_p95_ms": ("≤", 100.0),
    "streams_errors": ("≤", 0),
    "recovery_errors": ("≤", 0),
    "cancel_stopped_max_ms": ("≤", 1000.0),
    "cancel_errors": ("≤", 0),
}
TOKEN_DELAY = 0.02  # seconds between streamed chunks in the streams scenario
# Markers in the requests that the fake model's script answers specially.
STREAM_MARK = "when a Python programmer would reach for one"
STREAM_ANSWER = f"Answer to: {scenarios.STREAM_REQUEST}"
RECOVERY_REQUEST = "Recovery drill: join the parts"
CANCEL_REQUEST = "Recovery drill, cancelled on the way"
CANCEL_TASK_S = 60.0  # the slow task's model call when it is cancelled: far longer than 1 s
THROUGHPUT_LABELS = {
    "embedded": "embedded (SQLite)",
    "scaled_1w": "1 API + 1 worker",
    "scaled_2w": "1 API + 2 workers",
}


# -- the model -----------------------------------------------------------------------------------


def write_script(path: Path, hold: float, slow: float) -> str:
    """The fake model every process uses; its ``fake:PATH`` spec.

    Fast-path requests fall through to the auto replies of ``fake:default`` (zero latency).
    The streams scenario's request waits ``hold`` seconds, then streams its answer in
    chunks ``TOKEN_DELAY`` apart. The recovery drill plans three tasks; the second one
    takes ``slow`` seconds.
    """
    task = {"active_form": "Working", "depends_on": []}
    rules = [
        {
            "node": "fast_path",
            "match": STREAM_MARK,
            "reply": {
                "text": STREAM_ANSWER,
                "delay": hold,
                "token_delay": TOKEN_DELAY,
            },
        },
        {
            "node": "plan",
            "match": "Recovery drill",  # the cancel drill's request starts alike
            "reply": {
                "plan": {
                    "summary": "three parts",
                    "tasks": [
                        {**task, "id": 1, "description": "Quick part"},
                        {**task, "id": 2, "description": "Slow part"},
                        {**task, "id": 3, "description": "Join", "depends_on": [1, 2]},
                    ],
                }
            },
        },
        {
            "node": "execute_task",
            "match": "(?s)cancelled on the way.*Task:\nSlow part",
            "reply": {"text": "slow done", "delay": CANCEL_TASK_S},
        },
        {
            "node": "execute_task",
            "match": "Task:\nSlow part",
            "reply": {"text": "slow done", "delay": slow},
        },
    ]
    path.write_text(json.dumps({"fallback": "auto", "rules": rules}))
    return f"fake:{path}"


def hold_seconds(streams: int) -> float:
    """How long each streamed answer waits before its first chunk.

    Long enough for every client to create its operation and attach its stream before
    the first one streams, so they are all held at once. At least 8 s: an API instance
    tells the workers which operations it streams every 5 s, and a worker publishes an
    operation's token deltas only once it knows (it asks again at most once a second).
    """
    return max(8.0, streams / 30)


# -- what is measured around a scenario ---------------------------------------------------------


@dataclass
class Target:
    """An API instance as ``bench._scenarios`` sees it; ``cpu_seconds()`` snapshots every component.

    Each call records a :class:`Snapshot` of every measured process and returns their total CPU
    seconds, so the scenario's window can be split per component afterwards.
    """

    host: str
    port: int
    auth: dict[str, str]
    meter: Meter | None = None
    snapshots: list[Snapshot] = field(default_factory=list)

    def cpu_seconds(self) -> float:
        assert self.meter is not None
        snap = self.meter.snapshot()
        self.snapshots.append(snap)
        return sum(cpu for component, _, cpu in snap.procs.values() if component != "pg_other") + (
            snap.redis or 0.0
        )

    def window(self) -> CpuDelta:
        """CPU per component between the last two snapshots."""
        return Meter.delta(self.snapshots[-2], self.snapshots[-1])


def _rename(values: dict[str, Any], old: str, new: str) -> dict[str, Any]:
    return {new + key[len(old) :]: value for key, value in values.items()}


def _per_op(seconds: float, ops: int) -> float | None:
    return seconds * 1000 / ops if ops else None


def _cpu_rows(prefix: str, cpu: CpuDelta, ops: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        f"{prefix}_cpu_{c}_ms_per_op": _per_op(cpu.seconds[c], ops) for c in COMPONENTS
    }
    out[f"{prefix}_pg_other_cpu_ms"] = cpu.excluded_pg_other * 1000
    out[f"{prefix}_processes_ended"] = sum(n for c, n in cpu.ended.items() if c != "pg_other")
    return out


# -- latency and throughput ---------------------------------------------------------------------


def measure_latency(target: Target, label: str, n: int, warmup: int) -> dict[str, Any]:
    print(f"  latency ({label}): {warmup} warm-up + {n} operations", file=sys.stderr)
    values = run_async(lambda: scenarios.latency(target, n, warmup))
    values = _rename(values, "latency_", f"latency_{label}_")
    values[f"latency_{label}_cpu_ms_per_op"] = values.pop(f"latency_{label}_server_cpu_ms_per_op")
    return values


def measure_throughput(target: Target, label: str, clients: int, seconds: float) -> dict[str, Any]:
    print(f"  throughput ({label}): {clients} clients for {seconds:g} s", file=sys.stderr)
    values = run_async(lambda: scenarios.throughput(target, clients, seconds))
    values = _rename(values, "throughput_", f"throughput_{label}_")
    prefix = f"throughput_{label}"
    values[f"{prefix}_cpu_ms_per_op"] = values.pop(f"{prefix}_server_cpu_ms_per_op")
    ops = values[f"{prefix}_operations"]
    window = target.window()
    if label != "embedded":
        values.update(_cpu_rows(prefix, window, ops))
        values[f"{prefix}_pg_backends"] = target.snapshots[-1].pg_backends
    client = (values[f"{prefix}_client_cpu_ms_per_op"] or 0) * ops / 1000
    values[f"{prefix}_host_other_pct"] = _others(window, client)
    return values


def _others(cpu: CpuDelta, client: float) -> float | None:
    """The share of the machine's CPU time that went to processes outside the run, in %."""
    if cpu.host_capacity <= 0:
        return None
    used = cpu.total + client
    return max(0.0, cpu.host_busy - used) * 100 / cpu.host_capacity


def _count_operations(pg: Postgres) -> int:
    return pg.one("SELECT count(*) FROM operations")[0]


IDLE_S = 5.0  # how long the idle processes' own database activity is measured after a run


def measure_costs(
    pg: Postgres, redis: Redis, run: Callable[[], dict[str, Any]], settle: float
) -> dict[str, Any]:
    """Run ``run()`` and count what the database and Redis did per operation meanwhile.

    PostgreSQL counters are read after ``settle`` seconds on each side: a backend reports
    them within 10 s of going idle. Then the idle processes' own activity (heartbeats,
    polls) is read over ``IDLE_S`` more seconds and taken off for the time between the
    readings. WAL and Redis counters, which cover the whole server, are read right after
    the run instead.
    """
    time.sleep(settle)
    ops0, pg0, redis0, t0 = _count_operations(pg), pg.stats(), redis.stats(), time.monotonic()
    values = run()
    redis1, wal1 = redis.stats(), pg.stats()["wal_bytes"]  # both at once, for the whole server
    time.sleep(settle)
    ops, pg1, t1 = _count_operations(pg) - ops0, pg.stats(), time.monotonic()
    time.sleep(IDLE_S)
    pg2, t2 = pg.stats(), time.monotonic()
    idle = {k: (pg2[k] - pg1[k]) / (t2 - t1) for k in pg1}
    d = {k: pg1[k] - pg0[k] - idle[k] * (t1 - t0) for k in pg0}
    d["db_bytes"] = pg1["db_bytes"] - pg0["db_bytes"]
    d["wal_bytes"] = wal1 - pg0["wal_bytes"]
    r = {k: redis1[k] - redis0[k] for k in redis0}
    per = (lambda x: x / ops) if ops else (lambda x: None)
    kb = (lambda x: x / 1024 / ops) if ops else (lambda x: None)
    values.update(
        {
            "cost_operations_counted": ops,
            "cost_pg_transactions_per_op": per(d["xact_commit"] + d["xact_rollback"]),
            "cost_pg_rows_inserted_per_op": per(d["tup_inserted"]),
            "cost_pg_rows_updated_per_op": per(d["tup_updated"]),
            "cost_pg_rows_deleted_per_op": per(d["tup_deleted"]),
            "cost_pg_wal_kb_per_op": kb(d["wal_bytes"]),
            "cost_pg_db_growth_kb_per_op": kb(d["db_bytes"]),
            "cost_pg_idle_transactions_per_s": idle["xact_commit"] + idle["xact_rollback"],
            "cost_redis_commands_per_op": per(r["commands"]),
            "cost_redis_publishes_per_op": per(r["publishes"]),
            "cost_redis_in_bytes_per_op": per(r["net_input_bytes"]),
            "cost_redis_out_bytes_per_op": per(r["net_output_bytes"]),
        }
    )
    return values


# -- recovery -----------------------------------------------------------------------------------


class RecoveryError(Exception):
    pass


def _created(data: bytes) -> float:
    return datetime.fromisoformat(json.loads(data)["created_at"]).timestamp()


def _payload(data: bytes) -> dict[str, Any]:
    return json.loads(data).get("payload") or {}


async def _recover_once(cluster: Cluster, pg: Postgres, limit: float) -> dict[str, float]:
    """Start the drill, SIGKILL the worker running its slow task; seconds from the kill on."""
    api = cluster.apis[0]
    conn = Connection("127.0.0.1", api.port)
    killed_at = 0.0
    events = []
    try:
        body = {"request": RECOVERY_REQUEST, "route": "plan"}
        response = await conn.request("POST", "/v1/operations", body, cluster.auth)
        if response.status != 202:
            raise RecoveryError(f"POST: HTTP {response.status}: {response.body[:300]!r}")
        op_id = response.json()["id"]
        async with asyncio.timeout(limit):
            async for event in conn.events(f"/v1/operations/{op_id}/events", cluster.auth):
                events.append(event)
                if (
                    not killed_at
                    and event.event == "task.started"
                    and _payload(event.data).get("sequence") == 2
                ):
                    holder = pg.lease_holder(op_id) or ""
                    pid = int(holder.split(":")[1]) if holder.count(":") >= 2 else 0
                    if pid not in [w.pid for w in cluster.workers]:
                        raise RecoveryError(f"the lease holder {holder!r} is not a started worker")
                    killed_at = time.time()
                    cluster.kill_worker(pid)
                    print(f"    SIGKILL worker pid {pid} (it ran the slow task)", file=sys.stderr)
    finally:
        await conn.close()
    return _recovery_times(events, killed_at)


def _recovery_times(events: list[Any], killed_at: float) -> dict[str, float]:
    if not killed_at:
        raise RecoveryError("the slow task never started")
    kinds = [e.event for e in events]
    if "operation.completed" not in kinds:
        raise RecoveryError(f"the operation did not complete: {kinds[-3:]}")
    resumed = next((e for e in events if e.event == "operation.resumed"), None)
    if resumed is None:
        raise RecoveryError("no operation.resumed event")
    completed = [_payload(e.data).get("sequence") for e in events if e.event == "task.completed"]
    if sorted(completed) != [1, 2, 3]:
        raise RecoveryError(f"tasks completed: {completed} (each of 1, 2, 3 once expected)")
    done = next(e for e in events if e.event == "operation.completed")
    return {
        "resumed": _created(resumed.data) - killed_at,
        "completed": done.received - killed_at,
    }


def measure_recovery(cluster: Cluster, pg: Postgres, runs: int, slow: float) -> dict[str, Any]:
    resumed: list[float] = []
    completed: list[float] = []
    errors = 0
    for i in range(runs):
        print(
            f"  recovery {i + 1}/{runs}: two workers, kill the one running the slow task",
            file=sys.stderr,
        )
        try:
            times = run_async(lambda: _recover_once(cluster, pg, limit=60 + slow))
        except (RecoveryError, HttpError, OSError, TimeoutError) as exc:
            errors += 1
            print(f"    recovery error: {exc!r}", file=sys.stderr)
        else:
            resumed.append(times["resumed"])
            completed.append(times["completed"])
            print(
                f"    running again after {times['resumed']:.2f} s,"
                f" completed after {times['completed']:.2f} s",
                file=sys.stderr,
            )
        missing = 2 - len(cluster.workers)
        if missing > 0 and i < runs - 1:
            cluster.start(workers=missing)
    return {
        "recovery_resumed_s": [round(x, 2) for x in resumed],
        "recovery_resumed_median_s": statistics.median(resumed) if resumed else None,
        "recovery_completed_s": [round(x, 2) for x in completed],
        "recovery_completed_median_s": statistics.median(completed) if completed else None,
        "recovery_slow_task_s": slow,
        "recovery_runs": len(resumed),
        "recovery_errors": errors,
    }


# -- cancel -------------------------------------------------------------------------------------


async def _cancel_once(cluster: Cluster, limit: float) -> float:
    """Start the drill on instance A; once its slow task (a 60 s model call) runs on a worker,
    cancel it through the last instance; seconds from the cancel request to the
    ``operation.cancelled`` event on A's stream (the run, and its model call, stopped)."""
    first, last = cluster.apis[0], cluster.apis[-1]
    conn = Connection("127.0.0.1", first.port)
    other = Connection("127.0.0.1", last.port)
    try:
        body = {"request": CANCEL_REQUEST, "route": "plan"}
        response = await conn.request("POST", "/v1/operations", body, cluster.auth)
        if response.status != 202:
            raise RecoveryError(f"POST: HTTP {response.status}: {response.body[:300]!r}")
        op_id = response.json()["id"]
        asked = 0.0
        async with asyncio.timeout(limit):
            async for event in conn.events(f"/v1/operations/{op_id}/events", cluster.auth):
                if (
                    not asked
                    and event.event == "task.started"
                    and _payload(event.data).get("sequence") == 2
                ):
                    await asyncio.sleep(0.2)  # the model call is under way
                    asked = time.time()
                    cancel = await other.request(
                        "POST", f"/v1/operations/{op_id}/cancel", {}, cluster.auth
                    )
                    if cancel.status != 200:
                        raise RecoveryError(f"cancel: HTTP {cancel.status}")
                if event.event == "operation.cancelled":
                    return event.received - asked
                if event.event in ("operation.completed", "operation.failed"):
                    raise RecoveryError(f"the operation ended {event.event}")
    finally:
        await conn.close()
        await other.close()
    raise RecoveryError("no operation.cancelled event")


def measure_cancel(cluster: Cluster, runs: int) -> dict[str, Any]:
    took: list[float] = []
    errors = 0
    for i in range(runs):
        print(f"  cancel {i + 1}/{runs}: a 60 s model call on a worker", file=sys.stderr)
        try:
            took.append(run_async(lambda: _cancel_once(cluster, limit=60)))
        except (RecoveryError, HttpError, OSError, TimeoutError) as exc:
            errors += 1
            print(f"    cancel error: {exc!r}", file=sys.stderr)
        else:
            print(f"    stopped {took[-1] * 1000:.0f} ms after the request", file=sys.stderr)
    ms = [x * 1000 for x in took]
    return {
        "cancel_stopped_ms": [round(x, 1) for x in ms],
        "cancel_stopped_median_ms": statistics.median(ms) if ms else None,
        "cancel_stopped_max_ms": max(ms) if ms else None,
        "cancel_runs": len(ms),
        "cancel_errors": errors,
    }


# -- streams ------------------------------------------------------------------------------------


def stream_clients(
    share: list[tuple[str, int]], auth: dict[str, str], timeout: float
) -> dict[str, Any]:
    """Run one client per ``(host, port)`` at once, in this process; raw figures to merge.

    Module-level, so a client process started with ``spawn`` can run it.
    """
    raise_fd_limit()
    state = scenarios._Streams()
    usage0 = scenarios._own_cpu()

    async def main() -> None:
        posts = asyncio.Semaphore(scenarios.POSTS_IN_FLIGHT)
        tasks = [scenarios._stream_client(Target(h, p, auth), posts, state) for h, p in share]
        try:
            await asyncio.wait_for(asyncio.gather(*tasks), timeout)
        except TimeoutError:
            state.errors += len(share) - len(state.received) - state.errors
            print("    streams: timed out", file=sys.stderr)

    run_async(main)
    stored, deltas = scenarios._latencies(state.received)
    return {
        "stored": stored,
        "deltas": deltas,
        "errors": state.errors,
        "intervals": [
            (attached, events[-1].received) for attached, events in state.received if events
        ],
        "received": [e.received for _, events in state.received for e in events],
        "delta_counts": [
            sum(e.event == "model.delta" for e in events) for _, events in state.received
        ],
        "first_delta": [
            e.received for _, events in state.received for e in events if e.event == "model.delta"
        ],
        "cpu": scenarios._own_cpu() - usage0,
    }


def _held_at_once(intervals: list[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    held = peak = 0
    for _, step in edges:
        held += step
        peak = max(peak, held)
    return peak


class Sampler:
    """Samples, in a thread: VmRSS of some processes and the database's backend count (every
    ``every`` s), and every second the database's transaction count and every component's CPU."""

    def __init__(self, pids: dict[str, int], pg: Postgres, meter: Meter, every: float = 0.25):
        self.pids, self.pg, self.meter, self.every = pids, pg, meter, every
        self.peak_rss = dict.fromkeys(pids, 0.0)
        self.backends = 0
        # (time.time(), transactions so far, CPU snapshot), about once a second
        self.series: list[tuple[float, int, Snapshot]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample(0)

    def _sample(self, tick: int) -> None:
        for name, pid in self.pids.items():
            rss = proc_memory_mb(pid).get("VmRSS", 0.0)
            self.peak_rss[name] = max(self.peak_rss[name], rss)
        groups = self.pg.processes().values()
        self.backends = max(self.backends, sum(1 for g in groups if g == "mine"))
        if tick % round(1 / self.every) == 0:
            stats = self.pg.stats()
            xacts = stats["xact_commit"] + stats["xact_rollback"]
            self.series.append((time.time(), xacts, self.meter.snapshot()))

    def _run(self) -> None:
        tick = 0
        while not self._stop.wait(self.every):
            tick += 1
            self._sample(tick)

    def between(self, start: float, end: float) -> tuple[float, int, CpuDelta] | None:
        """Seconds, transactions and CPU from the first sample after ``start`` to the last
        before ``end`` (None when fewer than 3 s lie between them)."""
        inside = [s for s in self.series if start <= s[0] <= end]
        if len(inside) < 2 or inside[-1][0] - inside[0][0] < 3:
            return None
        (t0, x0, c0), (t1, x1, c1) = inside[0], inside[-1]
        return t1 - t0, x1 - x0, Meter.delta(c0, c1)


def measure_streams(
    cluster: Cluster, pg: Postgres, redis: Redis, meter: Meter, n: int, hold: float, procs: int
) -> dict[str, Any]:
    """``n`` clients, spread evenly over the API instances, each on its own streaming operation."""
    apis = [("127.0.0.1", a.port) for a in cluster.apis]
    share = [apis[i % len(apis)] for i in range(n)]
    procs = max(1, min(procs, n))
    parts = [share[i::procs] for i in range(procs)]
    pids = {f"api_{i + 1}": a.pid for i, a in enumerate(cluster.apis)}
    pids.update({f"worker_{i + 1}": w.pid for i, w in enumerate(cluster.workers)})
    before = {name: proc_memory_mb(pid).get("VmRSS", 0.0) for name, pid in pids.items()}
    print(
        f"  streams: {n} SSE clients over {len(apis)} API instances,"
        f" {len(cluster.workers)} workers, {procs} client process(es);"
        f" each answer waits {hold:g} s, then streams",
        file=sys.stderr,
    )
    timeout = hold + 180
    snap0, redis0 = meter.snapshot(), redis.stats()
    with Sampler(pids, pg, meter) as sampler:
        if procs == 1:
            results = [stream_clients(parts[0], cluster.auth, timeout)]
        else:
            with ProcessPoolExecutor(procs, mp_context=get_context("spawn")) as pool:
                futures = [pool.submit(stream_clients, p, cluster.auth, timeout) for p in parts]
                results = [f.result() for f in futures]
    cpu = Meter.delta(snap0, meter.snapshot())
    r = {k: v - redis0[k] for k, v in redis.stats().items()}
    return _streams_values(results, cpu, r, sampler, before, n, hold, procs)


def measure_fanout(cluster: Cluster, redis: Redis, meter: Meter, n: int) -> dict[str, Any]:
    """CPU each process spends on an event published by another process for an operation it
    does not follow: every API instance and worker receives every event on Redis.

    ``n`` token deltas of an operation nobody follows are published on the cluster's
    channel; the CPU each process used meanwhile, less what it uses idle for as long, is
    divided by ``n``.
    """
    from crewchief.events import Event, EventType
    from crewchief.runtime.fanout import wire

    event = Event(
        "00000000-0000-0000-0000-000000000000",
        EventType.MODEL_DELTA,
        {"node": "fast_path", "alias": "fast", "text": "monad "},
    )
    bodies = [wire(b"bench", event)] * n
    idle0 = meter.snapshot()
    time.sleep(2)
    idle = Meter.delta(idle0, meter.snapshot())
    busy0, started = meter.snapshot(), time.monotonic()
    redis.publish("deltas", bodies)
    time.sleep(2)
    busy = Meter.delta(busy0, meter.snapshot())
    scale = (time.monotonic() - started) / 2
    out: dict[str, Any] = {"streams_fanout_events": n}
    for kind, component, procs in (
        ("api", "api", cluster.apis),
        ("worker", "workers", cluster.workers),
    ):
        used = busy.seconds[component] - idle.seconds[component] * scale
        out[f"streams_fanout_{kind}_us_per_event"] = used * 1e6 / n / len(procs)
    return out


def _waiting(
    sampler: Sampler, attached: list[float], first_delta: float | None, ops: int
) -> dict[str, Any]:
    """What the held operations cost while they all wait for their model (per op per second).

    The window starts 2 s after the last stream attached and ends 1 s before the first
    chunk: every operation is running on a worker and followed by a client meanwhile.
    """
    keys = ["streams_waiting_window_s", "streams_waiting_pg_xacts_per_op_s"]
    keys += [f"streams_waiting_cpu_{c}_us_per_op_s" for c in COMPONENTS]
    window = None
    if attached and first_delta is not None and ops:
        window = sampler.between(max(attached) + 2, first_delta - 1)
    if window is None:
        return dict.fromkeys(keys, None)
    seconds, xacts, cpu = window
    out = {keys[0]: seconds, keys[1]: xacts / seconds / ops}
    for c in COMPONENTS:
        out[f"streams_waiting_cpu_{c}_us_per_op_s"] = cpu.seconds[c] * 1e6 / seconds / ops
    return out


def _streams_values(
    results: list[dict[str, Any]],
    cpu: CpuDelta,
    redis: dict[str, int],
    sampler: Sampler,
    before: dict[str, float],
    n: int,
    hold: float,
    procs: int,
) -> dict[str, Any]:
    stored = [x for r in results for x in r["stored"]]
    deltas = [x for r in results for x in r["deltas"]]
    received = [x for r in results for x in r["received"]]
    first_delta = min((x for r in results for x in r["first_delta"]), default=None)
    streaming = [x for x in received if first_delta is not None and x >= first_delta]
    span = (max(streaming) - first_delta) if streaming else 0.0
    ops = sum(len(r["intervals"]) for r in results)
    counts = [c for r in results for c in r["delta_counts"]]
    attached = [a for r in results for a, _ in r["intervals"]]
    values: dict[str, Any] = {
        "streams_connections_held": _held_at_once([iv for r in results for iv in r["intervals"]]),
        "streams_event_latency_p50_ms": scenarios.percentile(stored + deltas, 50),
        "streams_event_latency_p95_ms": scenarios.percentile(stored + deltas, 95),
        "streams_stored_event_latency_p95_ms": scenarios.percentile(stored, 95),
        "streams_delta_latency_p95_ms": scenarios.percentile(deltas, 95),
        "streams_events": len(received),
        "streams_events_per_s": len(streaming) / span if span > 0 else None,
        "streams_errors": sum(r["errors"] for r in results),
        "streams_deltas_per_op": statistics.fmean(counts) if counts else None,
        "streams_deltas_expected_per_op": len(re.findall(r"\S+\s*|\s+", STREAM_ANSWER)),
        "streams_attach_s": (max(attached) - min(attached)) if attached else None,
        "streams_hold_s": hold,
        "streams_client_processes": procs,
        "streams_client_cpu_s": sum(r["cpu"] for r in results),
    }
    values.update(_cpu_rows("streams", cpu, ops))
    values["streams_host_other_pct"] = _others(cpu, values["streams_client_cpu_s"])
    values.update(_waiting(sampler, attached, first_delta, ops))
    values["streams_redis_publishes_per_op"] = redis["publishes"] / ops if ops else None
    values["streams_redis_out_bytes_per_op"] = redis["net_output_bytes"] / ops if ops else None
    values["streams_pg_backends"] = sampler.backends
    for name, peak in sampler.peak_rss.items():
        values[f"streams_peak_rss_{name}_mb"] = peak
    apis = [k for k in sampler.peak_rss if k.startswith("api_")]
    workers = [k for k in sampler.peak_rss if k.startswith("worker_")]
    for kind, names in (("api", apis), ("worker", workers)):
        grown = sum(sampler.peak_rss[k] - before[k] for k in names)
        values[f"streams_{kind}_kb_per_op"] = grown * 1024 / n if names else None
    return values


# -- the run ------------------------------------------------------------------------------------


def _wants(args: argparse.Namespace, scenario: str) -> bool:
    return args.only in (None, scenario)


def run_embedded(root: Path, model: str, args: argparse.Namespace) -> dict[str, Any]:
    """Latency and throughput on one ``crewchief serve`` on SQLite (embedded mode)."""
    values: dict[str, Any] = {}
    server = ServerProcess(root / "embedded", model)
    server.env["CREWCHIEF_API_AUTH_FAILURES"] = "0"  # as in the cluster (see bench/README.md)
    try:
        print(f"  starting embedded crewchief serve ({model})", file=sys.stderr)
        server.start()
        assert server.process is not None
        pid = server.process.pid
        print(f"  embedded pid {pid} on port {server.port}", file=sys.stderr)
        meter = Meter(lambda: [pid], lambda: [], None, None)
        target = Target(server.host, server.port, server.auth, meter)
        if _wants(args, "latency"):
            values.update(measure_latency(target, "embedded", args.n, args.warmup))
        if _wants(args, "throughput"):
            values.update(measure_throughput(target, "embedded", args.clients, args.seconds))
    finally:
        server.stop()
    return values


def connect(args: argparse.Namespace) -> tuple[Postgres, Redis]:
    """The run's Redis and a fresh database; exits with a message when either is missing."""
    try:
        redis = Redis(args.redis)
        redis.ping()
    except Exception as exc:  # noqa: BLE001 - any client error says the same
        raise SystemExit(f"error: Redis is not reachable at {args.redis}: {exc}") from None
    pg = Postgres(args.pg)
    try:
        pg.create()
    except Exception as exc:  # noqa: BLE001
        raise SystemExit(f"error: cannot create a database at {args.pg}: {exc}") from None
    return pg, redis


def run_scaled(
    root: Path, model: str, args: argparse.Namespace, pg: Postgres, redis: Redis
) -> dict[str, Any]:
    """Every scaled scenario on one cluster, grown as the scenarios need it."""
    values: dict[str, Any] = {}
    print(f"  database {pg.name}, Redis prefix {redis.prefix}", file=sys.stderr)
    cluster = Cluster(root / "scaled", model, args.concurrency, pg, redis)
    try:
        cluster.prepare()
        meter = Meter(
            lambda: [a.pid for a in cluster.apis],
            lambda: [w.pid for w in cluster.workers],
            pg,
            redis,
        )
        if _wants(args, "latency") or _wants(args, "throughput"):
            cluster.start(apis=1, workers=1)
            target = Target("127.0.0.1", cluster.apis[0].port, cluster.auth, meter)
            if _wants(args, "latency"):
                values.update(measure_latency(target, "scaled", args.n, args.warmup))
            if _wants(args, "throughput"):
                values.update(measure_throughput(target, "scaled_1w", args.clients, args.seconds))
                cluster.start(workers=1)
                values.update(
                    measure_costs(
                        pg,
                        redis,
                        lambda: measure_throughput(target, "scaled_2w", args.clients, args.seconds),
                        args.settle,
                    )
                )
        if _wants(args, "streams"):
            cluster.start(
                apis=max(0, 2 - len(cluster.apis)), workers=max(0, 2 - len(cluster.workers))
            )
            values.update(
                measure_streams(
                    cluster, pg, redis, meter, args.streams, args.hold, args.client_procs
                )
            )
            values.update(measure_fanout(cluster, redis, meter, args.fanout))
        if _wants(args, "cancel"):
            cluster.start(
                apis=max(0, 2 - len(cluster.apis)), workers=max(0, 2 - len(cluster.workers))
            )
            values.update(measure_cancel(cluster, args.cancels))
        if _wants(args, "recovery"):
            cluster.start(
                apis=max(0, 1 - len(cluster.apis)), workers=max(0, 2 - len(cluster.workers))
            )
            values.update(measure_recovery(cluster, pg, args.recoveries, args.slow_task))
    finally:
        cluster.stop()
    return values


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen scenarios; return measurement name → value."""
    raise_fd_limit()
    values: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="crewchief-bench-scaled-") as tmp:
        root = Path(tmp)
        model = write_script(root / "model.json", args.hold, args.slow_task)
        pg, redis = connect(args)
        try:
            if _wants(args, "latency") or _wants(args, "throughput"):
                values.update(run_embedded(root, model, args))
            values.update(run_scaled(root, model, args, pg, redis))
        finally:
            try:
                pg.drop()
            finally:
                redis.clean()
    values.update(per_delta(values, args.hold))
    for label in ("scaled_1w", "scaled_2w"):
        base = values.get("throughput_embedded_cpu_ms_per_op")
        mine = values.get(f"throughput_{label}_cpu_ms_per_op")
        if base and mine is not None:
            values[f"throughput_{label}_cpu_ratio"] = mine / base
    return values


def per_delta(values: dict[str, Any], hold: float) -> dict[str, Any]:
    """CPU per token delta, per component, from the streams and throughput scenarios.

    A streamed operation costs what a fast-path one does (two-worker throughput), plus
    its waiting cost for as long as it runs (``hold`` and the chunks' spacing), plus its
    deltas: what is left, divided by the chunks the model streamed. It includes what every
    other process spends receiving each delta.
    """
    chunks = values.get("streams_deltas_expected_per_op")
    if not chunks:
        return {}
    seconds = hold + (chunks - 1) * TOKEN_DELAY
    out = {}
    for c in COMPONENTS:
        streamed = values.get(f"streams_cpu_{c}_ms_per_op")
        fast = values.get(f"throughput_scaled_2w_cpu_{c}_ms_per_op")
        waiting = values.get(f"streams_waiting_cpu_{c}_us_per_op_s")
        if None not in (streamed, fast, waiting):
            out[f"derived_{c}_us_per_delta"] = (
                (streamed - fast) * 1000 - waiting * seconds
            ) / chunks
    return out


# -- the report ---------------------------------------------------------------------------------


def build_report(values: dict[str, Any], streams: int) -> dict[str, dict[str, Any]]:
    """``{key: {"value", "target", "pass"}}`` plus ``all_targets_met``."""
    return server_report(values, streams, TARGETS)


def _rows() -> dict[str, tuple[str, str, str]]:
    """key → (scenario, label, unit), in table order."""
    rows: dict[str, tuple[str, str, str]] = {}
    for label, title in (("embedded", "embedded"), ("scaled", "scaled, 1 worker")):
        p = f"latency_{label}"
        rows[f"{p}_first_event_p50_ms"] = ("latency", f"{title}: POST → first SSE event, p50", "ms")
        rows[f"{p}_first_event_p95_ms"] = ("latency", f"{title}: POST → first SSE event, p95", "ms")
        rows[f"{p}_terminal_p50_ms"] = (
            "latency",
            f"{title}: POST → operation.completed, p50",
            "ms",
        )
        rows[f"{p}_terminal_p95_ms"] = (
            "latency",
            f"{title}: POST → operation.completed, p95",
            "ms",
        )
        rows[f"{p}_cpu_ms_per_op"] = ("latency", f"{title}: server CPU per op (sequential)", "ms")
        rows[f"{p}_operations"] = ("latency", f"{title}: operations timed", "")
        rows[f"{p}_errors"] = ("latency", f"{title}: errors", "")
    for label, title in THROUGHPUT_LABELS.items():
        p = f"throughput_{label}"
        rows[f"{p}_ops_per_s"] = ("throughput", f"{title}: operations per second", "/s")
        rows[f"{p}_cpu_ms_per_op"] = ("throughput", f"{title}: CPU per op, total", "ms")
        for c in COMPONENTS:
            rows[f"{p}_cpu_{c}_ms_per_op"] = ("throughput", f"  {c}", "ms")
        rows[f"{p}_cpu_ratio"] = ("throughput", "  CPU per op ÷ embedded", "×")
        rows[f"{p}_terminal_p50_ms"] = ("throughput", "  POST → operation.completed, p50", "ms")
        rows[f"{p}_terminal_p95_ms"] = ("throughput", "  POST → operation.completed, p95", "ms")
        rows[f"{p}_client_cpu_ms_per_op"] = ("throughput", "  load generator CPU per op", "ms")
        rows[f"{p}_pg_backends"] = ("throughput", "  PostgreSQL backends of the run", "")
        rows[f"{p}_pg_other_cpu_ms"] = (
            "throughput",
            "  other databases' backends (excluded)",
            "ms",
        )
        rows[f"{p}_processes_ended"] = ("throughput", "  processes ended (CPU not counted)", "")
        rows[f"{p}_host_steal_pct"] = ("throughput", "  host CPU taken by the hypervisor", "%")
        rows[f"{p}_host_other_pct"] = ("throughput", "  host CPU used outside the run", "%")
        rows[f"{p}_operations"] = ("throughput", "  operations completed", "")
        rows[f"{p}_errors"] = ("throughput", "  errors", "")
    costs = {
        "cost_pg_transactions_per_op": ("PostgreSQL transactions", ""),
        "cost_pg_rows_inserted_per_op": ("PostgreSQL rows inserted", ""),
        "cost_pg_rows_updated_per_op": ("PostgreSQL rows updated", ""),
        "cost_pg_rows_deleted_per_op": ("PostgreSQL rows deleted", ""),
        "cost_pg_wal_kb_per_op": ("PostgreSQL WAL written (whole server)", "KB"),
        "cost_pg_db_growth_kb_per_op": ("database size growth", "KB"),
        "cost_pg_idle_transactions_per_s": ("  idle processes' own transactions (taken off)", "/s"),
        "cost_redis_commands_per_op": ("Redis commands (whole server)", ""),
        "cost_redis_publishes_per_op": ("Redis PUBLISH", ""),
        "cost_redis_in_bytes_per_op": ("Redis bytes in", "B"),
        "cost_redis_out_bytes_per_op": ("Redis bytes out", "B"),
        "cost_operations_counted": ("operations counted (warm-up + window)", ""),
    }
    for key, (title, unit) in costs.items():
        rows[key] = ("per op (2 workers)", title, unit)
    rows.update(
        {
            "streams_connections_held": ("streams", "SSE connections held at once (max)", ""),
            "streams_event_latency_p50_ms": (
                "streams",
                "event latency (receive − created_at), p50",
                "ms",
            ),
            "streams_event_latency_p95_ms": ("streams", "event latency, p95", "ms"),
            "streams_stored_event_latency_p95_ms": ("streams", "  stored events only, p95", "ms"),
            "streams_delta_latency_p95_ms": ("streams", "  model.delta events only, p95", "ms"),
            "streams_events": ("streams", "events received (live + replayed)", ""),
            "streams_events_per_s": ("streams", "events per second", "/s"),
            "streams_errors": ("streams", "errors", ""),
        }
    )
    for c in COMPONENTS:
        rows[f"streams_cpu_{c}_ms_per_op"] = ("streams", f"CPU per streamed op: {c}", "ms")
    rows["streams_pg_other_cpu_ms"] = ("streams", "other databases' backends (excluded)", "ms")
    rows["streams_processes_ended"] = ("streams", "processes ended (CPU not counted)", "")
    rows["streams_redis_publishes_per_op"] = ("streams", "Redis PUBLISH per streamed op", "")
    rows["streams_redis_out_bytes_per_op"] = ("streams", "Redis bytes out per streamed op", "B")
    for name in ("api_1", "api_2", "worker_1", "worker_2"):
        rows[f"streams_peak_rss_{name}_mb"] = (
            "streams",
            f"peak RSS, {name.replace('_', ' ')}",
            "MB",
        )
    rows["streams_api_kb_per_op"] = ("streams", "API RSS growth per SSE stream", "KB")
    rows["streams_worker_kb_per_op"] = ("streams", "worker RSS growth per running op", "KB")
    rows["streams_pg_backends"] = ("streams", "PostgreSQL backends of the run (max)", "")
    rows["streams_client_processes"] = ("streams", "client processes", "")
    rows["streams_client_cpu_s"] = ("streams", "client CPU", "s")
    rows["streams_host_other_pct"] = ("streams", "host CPU used outside the run", "%")
    rows["streams_deltas_per_op"] = ("streams", "model.delta events received per stream", "")
    rows["streams_deltas_expected_per_op"] = (
        "streams",
        "  chunks the model streams per answer",
        "",
    )
    rows["streams_waiting_window_s"] = ("streams", "all held, waiting for the model: window", "s")
    rows["streams_waiting_pg_xacts_per_op_s"] = (
        "streams",
        "  PostgreSQL transactions per op per second",
        "",
    )
    for c in COMPONENTS:
        rows[f"streams_waiting_cpu_{c}_us_per_op_s"] = (
            "streams",
            f"  CPU per op per second: {c}",
            "µs",
        )
    rows["streams_fanout_api_us_per_event"] = (
        "streams",
        "CPU per event not followed, each API instance",
        "µs",
    )
    rows["streams_fanout_worker_us_per_event"] = (
        "streams",
        "CPU per event not followed, each worker",
        "µs",
    )
    rows["streams_fanout_events"] = ("streams", "  events published to measure it", "")
    rows["streams_attach_s"] = ("streams", "first → last stream attached (POSTs)", "s")
    rows["streams_hold_s"] = ("streams", "wait before each answer's first chunk", "s")
    for c in COMPONENTS:
        rows[f"derived_{c}_us_per_delta"] = (
            "derived",
            f"CPU per token delta: {c}",
            "µs",
        )
    rows.update(
        {
            "recovery_resumed_s": ("recovery", "SIGKILL → operation.resumed, each run", "s"),
            "recovery_resumed_median_s": ("recovery", "SIGKILL → operation.resumed, median", "s"),
            "recovery_completed_s": ("recovery", "SIGKILL → operation.completed, each run", "s"),
            "recovery_completed_median_s": (
                "recovery",
                "SIGKILL → operation.completed, median",
                "s",
            ),
            "recovery_slow_task_s": ("recovery", "the slow task's model call", "s"),
            "recovery_runs": ("recovery", "runs", ""),
            "recovery_errors": ("recovery", "errors", ""),
            "cancel_stopped_ms": (
                "cancel",
                "cancel on instance B → operation.cancelled on A, each run",
                "ms",
            ),
            "cancel_stopped_median_ms": ("cancel", "cancel → cancelled, median", "ms"),
            "cancel_stopped_max_ms": ("cancel", "cancel → cancelled, worst", "ms"),
            "cancel_runs": ("cancel", "runs", ""),
            "cancel_errors": ("cancel", "errors", ""),
        }
    )
    return rows


ROWS = _rows()


def _cell(value: Any, unit: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, list):
        return " / ".join(f"{v:.2f}" for v in value) + (f" {unit}" if unit and value else "")
    if isinstance(value, int):
        return f"{value:,}" + (f" {unit}" if unit in ("B", "KB") else "")
    digits = 2 if unit in ("ms", "s", "×") else 1
    return f"{value:,.{digits}f}" + (f" {unit}" if unit else "")


def print_table(report: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    """Print the report as a rich table, then the overall line."""
    title = (
        f"crewchief scaled mode vs embedded ({args.n} sequential ops, {args.clients} clients × "
        f"{args.seconds:g} s, {args.streams} SSE streams, {args.recoveries} recoveries, fake model)"
    )
    targets = {**TARGETS, "streams_connections_held": ("≥", args.streams)}
    render_table(title, report, ROWS, targets, _cell, 120)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, and print the table (or JSON). Always returns 0."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.scaled", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput window (10)")
    parser.add_argument("--clients", type=int, default=20, help="throughput clients (20)")
    parser.add_argument("--n", type=int, default=100, help="sequential operations (100)")
    parser.add_argument(
        "--warmup", type=int, default=10, help="untimed sequential operations first (10)"
    )
    parser.add_argument("--recoveries", type=int, default=3, help="worker kills (3)")
    parser.add_argument("--cancels", type=int, default=5, help="cancelled operations (5)")
    parser.add_argument(
        "--slow-task", type=float, default=3.0, help="the killed task's model call, s (3)"
    )
    parser.add_argument("--streams", type=int, default=2000, help="concurrent SSE clients (2000)")
    parser.add_argument(
        "--hold", type=float, help="wait before each streamed answer (max(8, streams/30))"
    )
    parser.add_argument(
        "--client-procs", type=int, default=2, help="processes of the SSE clients (2)"
    )
    parser.add_argument(
        "--fanout", type=int, default=20000, help="events published to time their fan-out (20000)"
    )
    parser.add_argument(
        "--concurrency", type=int, help="crewchief worker --concurrency (max(clients, streams))"
    )
    parser.add_argument(
        "--settle", type=float, default=11.0, help="pause before reading PostgreSQL counters (11)"
    )
    parser.add_argument(
        "--pg", default=PG_ADMIN_URL, help="PostgreSQL admin URL (creates a database)"
    )
    parser.add_argument("--redis", default=REDIS_URL, help="Redis URL")
    parser.add_argument("--only", choices=SCENARIOS, help="run one scenario")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    if (
        min(args.n, args.clients, args.streams, args.recoveries, args.client_procs) < 1
        or args.seconds <= 0
    ):
        parser.error(
            "--n, --clients, --streams, --recoveries, --client-procs must be ≥ 1, --seconds > 0"
        )
    if args.hold is None:
        args.hold = hold_seconds(args.streams)
    if args.concurrency is None:
        args.concurrency = max(args.clients, args.streams if _wants(args, "streams") else 0)
    report = build_report(collect(args), args.streams)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
