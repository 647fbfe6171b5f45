"""The three scenarios of ``bench.server``: latency, throughput and streams.

Each takes a running server (``bench.server.ServerProcess``: ``host``, ``port``,
``auth``, ``cpu_seconds()``, ``memory_mb()``) and returns measurement name → value.
"""

from __future__ import annotations

import asyncio
import json
import math
import resource
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench._http import Connection, HttpError, SseEvent

FAST_REQUEST = "What is a monad?"
# The fast path's fake answer repeats the request, so a longer one streams more tokens.
STREAM_REQUEST = (
    "Explain in plain words what a monad is, how it differs from a functor,"
    " and when a Python programmer would reach for one?"
)
TERMINAL = frozenset(
    {"operation.completed", "operation.failed", "operation.cancelled", "operation.rejected"}
)
POSTS_IN_FLIGHT = 32  # bound on the burst of POSTs of the streams scenario


class OpError(Exception):
    """An operation that did not go as a user expects (HTTP error, no terminal event...)."""


def percentile(values: list[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    xs, k = sorted(values), (len(values) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


async def ready(host: str, port: int) -> bool:
    conn = Connection(host, port)
    try:
        return (await conn.request("GET", "/readyz")).status == 200
    except (OSError, HttpError):
        return False
    finally:
        await conn.close()


async def create(conn: Connection, auth: dict[str, str], request: str) -> str:
    response = await conn.request(
        "POST", "/v1/operations", {"request": request, "route": "fast"}, auth
    )
    if response.status != 202:
        raise OpError(f"POST /v1/operations: HTTP {response.status}: {response.body[:300]!r}")
    return response.json()["id"]


async def follow(conn: Connection, auth: dict[str, str], op_id: str) -> list[SseEvent]:
    """Every event of the operation's stream, which must end with ``operation.completed``."""
    events = [e async for e in conn.events(f"/v1/operations/{op_id}/events", auth)]
    last = next((e.event for e in reversed(events) if e.event in TERMINAL), None)
    if last != "operation.completed":
        raise OpError(f"operation {op_id}: stream ended with {last or 'no terminal event'}")
    return events


async def timed_operation(conn: Connection, auth: dict[str, str]) -> tuple[float, float]:
    """POST a fast-path operation and follow it; ms to the first event and to the terminal one."""
    started = time.perf_counter()
    op_id = await create(conn, auth, FAST_REQUEST)
    events = await follow(conn, auth, op_id)
    terminal = next(e for e in events if e.event in TERMINAL)
    return (
        (events[0].received_perf - started) * 1000,
        (terminal.received_perf - started) * 1000,
    )


async def latency(server: Any, n: int, warmup: int) -> dict[str, Any]:
    conn = Connection(server.host, server.port)
    first: list[float] = []
    terminal: list[float] = []
    errors, cpu0 = 0, 0.0
    try:
        for i in range(warmup + n):
            if i == warmup:
                cpu0 = server.cpu_seconds()
            try:
                a, b = await asyncio.wait_for(timed_operation(conn, server.auth), 30)
            except (HttpError, OpError, TimeoutError) as exc:
                errors += i >= warmup
                print(f"    latency error: {exc}", file=sys.stderr)
                await conn.close()
                continue
            if i >= warmup:
                first.append(a)
                terminal.append(b)
    finally:
        await conn.close()
    cpu = server.cpu_seconds() - cpu0
    return {
        "latency_first_event_p50_ms": percentile(first, 50),
        "latency_first_event_p95_ms": percentile(first, 95),
        "latency_terminal_p50_ms": percentile(terminal, 50),
        "latency_terminal_p95_ms": percentile(terminal, 95),
        "latency_server_cpu_ms_per_op": cpu * 1000 / len(terminal) if terminal else None,
        "latency_operations": len(terminal),
        "latency_errors": errors,
    }


@dataclass
class _Load:
    done: list[float] = field(default_factory=list)  # ms, POST → terminal event
    errors: int = 0


async def _worker(server: Any, deadline: float, load: _Load, warm: bool) -> None:
    conn = Connection(server.host, server.port)
    try:
        while True:
            try:
                _, ms = await asyncio.wait_for(timed_operation(conn, server.auth), 30)
                if not warm:
                    load.done.append(ms)
            except (HttpError, OpError, TimeoutError) as exc:
                load.errors += not warm
                print(f"    throughput error: {exc}", file=sys.stderr)
                await conn.close()
                await asyncio.sleep(0.05)
            if warm or time.perf_counter() >= deadline:
                return
    finally:
        await conn.close()


async def throughput(server: Any, clients: int, seconds: float) -> dict[str, Any]:
    """``clients`` loops of POST + follow for ``seconds``; ops/s and server CPU per op."""
    await asyncio.gather(*(_worker(server, 0, _Load(), warm=True) for _ in range(clients)))
    load = _Load()
    cpu0, self0, host0 = server.cpu_seconds(), _own_cpu(), host_cpu()
    started = time.perf_counter()
    deadline = started + seconds
    await asyncio.gather(*(_worker(server, deadline, load, warm=False) for _ in range(clients)))
    elapsed = time.perf_counter() - started
    cpu, own = server.cpu_seconds() - cpu0, _own_cpu() - self0
    host = [b - a for a, b in zip(host0, host_cpu(), strict=True)]
    ops = len(load.done)
    return {
        "throughput_ops_per_s": ops / elapsed,
        "throughput_server_cpu_ms_per_op": cpu * 1000 / ops if ops else None,
        "throughput_terminal_p50_ms": percentile(load.done, 50),
        "throughput_terminal_p95_ms": percentile(load.done, 95),
        "throughput_client_cpu_ms_per_op": own * 1000 / ops if ops else None,
        "throughput_operations": ops,
        "throughput_errors": load.errors,
        "throughput_host_steal_pct": 100 * host[1] / host[0] if host[0] else None,
    }


def host_cpu() -> tuple[int, int]:
    """``(all, steal)`` CPU time of the machine so far, in clock ticks (from ``/proc/stat``).

    Steal is time a virtual machine's CPUs were ready to run but the hypervisor ran
    something else: on a shared host it slows everything measured here.
    """
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return 0, 0
    ticks = [int(f) for f in fields[:8]]  # user nice system idle iowait irq softirq steal
    return sum(ticks), ticks[7] if len(ticks) > 7 else 0


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@dataclass
class _Streams:
    open: int = 0
    max_open: int = 0
    errors: int = 0
    # (attached at, events) per stream that ended well
    received: list[tuple[float, list[SseEvent]]] = field(default_factory=list)


async def _stream_client(server: Any, posts: asyncio.Semaphore, state: _Streams) -> None:
    conn = Connection(server.host, server.port)
    try:
        async with posts:
            op_id = await create(conn, server.auth, STREAM_REQUEST)
        attached = time.time()
        state.open += 1
        state.max_open = max(state.max_open, state.open)
        try:
            events = await follow(conn, server.auth, op_id)
        finally:
            state.open -= 1
        state.received.append((attached, events))
    except (HttpError, OpError, OSError) as exc:
        state.errors += 1
        print(f"    stream error: {exc}", file=sys.stderr)
    finally:
        await conn.close()


def _latencies(received: list[tuple[float, list[SseEvent]]]) -> tuple[list[float], list[float]]:
    """Latency (ms) of stored and of delta events created after their stream was attached.

    Events created before the GET was sent were replayed from the database, so
    their receive time says nothing about live delivery; they are left out.
    """
    stored: list[float] = []
    deltas: list[float] = []
    for attached, events in received:
        for e in events:
            created = datetime.fromisoformat(json.loads(e.data)["created_at"]).timestamp()
            if created >= attached:
                (deltas if e.event == "model.delta" else stored).append(
                    (e.received - created) * 1000
                )
    return stored, deltas


def _streaming_rate(events: list[SseEvent]) -> float | None:
    """Events received per second from the first token delta to the last event (not the hold)."""
    deltas = [e.received for e in events if e.event == "model.delta"]
    if not deltas:
        return None
    start = min(deltas)
    times = [e.received for e in events if e.received >= start]
    span = max(times) - start
    return len(times) / span if span > 0 else None


async def streams(server: Any, n: int, hold: float) -> dict[str, Any]:
    """``n`` clients each POST an operation and follow its SSE stream, all at once."""
    state, posts = _Streams(), asyncio.Semaphore(POSTS_IN_FLIGHT)
    cpu0 = server.cpu_seconds()
    tasks = [_stream_client(server, posts, state) for _ in range(n)]
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), hold + 120)
    except TimeoutError:
        state.errors += n - len(state.received) - state.errors
        print("    streams: timed out", file=sys.stderr)
    cpu = server.cpu_seconds() - cpu0
    memory = server.memory_mb()
    stored, deltas = _latencies(state.received)
    every = [e for _, events in state.received for e in events]
    rate = _streaming_rate(every)
    return {
        "streams_connections_held": state.max_open,
        "streams_event_latency_p50_ms": percentile(stored + deltas, 50),
        "streams_event_latency_p95_ms": percentile(stored + deltas, 95),
        "streams_stored_event_latency_p95_ms": percentile(stored, 95),
        "streams_delta_latency_p95_ms": percentile(deltas, 95),
        "streams_events": len(every),
        "streams_events_per_s": rate,
        "streams_server_cpu_s": cpu,
        "streams_server_rss_mb": memory.get("VmRSS"),
        "streams_server_peak_rss_mb": memory.get("VmHWM"),
        "streams_errors": state.errors,
    }
