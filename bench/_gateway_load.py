"""Load for ``bench.gateway``: OpenAI chat requests on ``bench._http`` keep-alive connections.

- :class:`Endpoint`: where requests go (the fake upstream itself, the gateway, LiteLLM).
- :class:`ChatConnection`: one keep-alive connection; a non-streaming request timed to its
  last byte, a streaming one timed to its first chunk with content (TTFB) and to ``[DONE]``.
- :func:`latency`: sequential requests, the endpoints taking turns, so a busy moment of the
  machine falls on all of them alike.
- :func:`load`: concurrent clients for a time or for a number of requests.
- :class:`Host`: what the rest of the machine did meanwhile (hypervisor steal, other load).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench._cluster import host_ticks
from bench._http import Connection, HttpError, parse_block
from bench._scenarios import host_cpu, percentile

PROMPT = "What is a monad?"
TIMEOUT_S = 30.0  # a hang guard per request
JSON = {"Content-Type": "application/json"}
CLK_TCK = os.sysconf("SC_CLK_TCK")
ERRORS = (HttpError, OSError, TimeoutError, asyncio.IncompleteReadError, ValueError)


class ChatError(Exception):
    """An answer an OpenAI client would not accept (status, no choices, a cut stream)."""


@dataclass
class Endpoint:
    """Chat completions at ``http://host:port{path}`` for ``model``, sent with ``headers``.

    ``cpu`` gives the CPU seconds so far of the process that serves it, when it has one
    of its own (not the direct one: the upstream serves every endpoint).
    """

    name: str
    host: str
    port: int
    path: str
    model: str
    headers: dict[str, str] = field(default_factory=dict)
    cpu: Callable[[], float] | None = None

    def body(self, stream: bool) -> bytes:
        body: dict[str, Any] = {"model": self.model}
        body["messages"] = [{"role": "user", "content": PROMPT}]
        if stream:
            body["stream"] = True
        return json.dumps(body).encode()


def _has_content(data: bytes) -> bool:
    """Whether an SSE ``data`` carries a chunk with text (not the role-only first chunk)."""
    try:
        chunk = json.loads(data)
    except ValueError:
        return False
    choices = chunk.get("choices") if isinstance(chunk, dict) else None
    return any((c.get("delta") or {}).get("content") for c in choices or [])


class ChatConnection(Connection):
    """One keep-alive connection to an :class:`Endpoint`; one request at a time."""

    def __init__(self, endpoint: Endpoint):
        super().__init__(endpoint.host, endpoint.port, endpoint.headers)
        self.endpoint = endpoint
        self._plain, self._streamed = endpoint.body(False), endpoint.body(True)

    async def complete(self) -> float:
        """A non-streaming request; ms from sending it to the answer's last byte."""
        started = time.perf_counter()
        response = await self.request("POST", self.endpoint.path, self._plain)
        ms = (time.perf_counter() - started) * 1000
        if response.status != 200 or b'"choices"' not in response.body:
            raise ChatError(f"HTTP {response.status}: {response.body[:300]!r}")
        return ms

    async def stream(self) -> tuple[float, float]:
        """A streaming request; ms to the first chunk with content (TTFB) and to ``[DONE]``."""
        started = time.perf_counter()
        first: float | None = None
        done, error, complete = False, b"", False
        try:
            await self._send("POST", self.endpoint.path, self._streamed, JSON)
            status, head = await self._read_head()
            if status != 200:
                body = b"".join([c async for c in self._body_chunks(status, head)])
                raise ChatError(f"HTTP {status}: {body[:300]!r}")
            buffer = b""
            async for chunk in self._body_chunks(status, head):
                buffer += chunk
                if b"\n\n" not in buffer:
                    continue
                now = time.perf_counter()
                *blocks, buffer = buffer.replace(b"\r\n", b"\n").split(b"\n\n")
                for block in blocks:
                    data = parse_block(block)[2]
                    if data == b"[DONE]":
                        done = True
                    elif data.startswith(b'{"error"'):
                        error = data
                    elif first is None and _has_content(data):
                        first = now
            complete = True
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise HttpError(f"stream: {exc!r}") from exc
        finally:
            if not complete:
                await self.close()
        ends = (time.perf_counter() - started) * 1000
        if error or first is None or not done:
            raise ChatError(f"bad stream: content={first is not None} done={done} {error[:300]!r}")
        return (first - started) * 1000, ends


@dataclass
class Samples:
    """One endpoint's timings (ms) and errors."""

    complete: list[float] = field(default_factory=list)
    ttfb: list[float] = field(default_factory=list)
    stream: list[float] = field(default_factory=list)
    errors: int = 0


async def _timed(conn: ChatConnection, streamed: bool) -> tuple[float, ...] | None:
    try:
        async with asyncio.timeout(TIMEOUT_S):
            return await conn.stream() if streamed else (await conn.complete(),)
    except (ChatError, *ERRORS) as exc:
        print(f"    {conn.endpoint.name} error: {exc!r}", file=sys.stderr)
        await conn.close()
        return None


async def latency(
    endpoints: list[Endpoint], n: int, warmup: int, upstream_cpu: Callable[[], float]
) -> dict[str, Any]:
    """``warmup`` + ``n`` rounds; in each, every endpoint gets one non-streaming request,
    then one streaming one, on its own keep-alive connection."""
    conns = [ChatConnection(e) for e in endpoints]
    samples = {e.name: Samples() for e in endpoints}
    cpu0: dict[str, float] = {}
    host, ours0 = Host(), 0.0
    try:
        for i in range(warmup + n):
            if i == warmup:
                cpu0 = {e.name: e.cpu() for e in endpoints if e.cpu is not None}
                host, ours0 = Host(), upstream_cpu() + own_cpu()
            for conn in conns:
                s = samples[conn.endpoint.name]
                plain = await _timed(conn, False)
                streamed = await _timed(conn, True)
                if i < warmup:
                    continue
                s.errors += (plain is None) + (streamed is None)
                if plain is not None:
                    s.complete.append(plain[0])
                if streamed is not None:
                    s.ttfb.append(streamed[0])
                    s.stream.append(streamed[1])
    finally:
        for conn in conns:
            await conn.close()
    ours = upstream_cpu() + own_cpu() - ours0
    values: dict[str, Any] = {}
    for e in endpoints:
        s, p = samples[e.name], f"latency_{e.name}"
        values[f"{p}_p50_ms"] = percentile(s.complete, 50)
        values[f"{p}_p99_ms"] = percentile(s.complete, 99)
        values[f"{p}_ttfb_p50_ms"] = percentile(s.ttfb, 50)
        values[f"{p}_ttfb_p99_ms"] = percentile(s.ttfb, 99)
        values[f"{p}_stream_p50_ms"] = percentile(s.stream, 50)
        values[f"{p}_requests"] = len(s.complete) + len(s.stream)
        values[f"{p}_errors"] = s.errors
        if e.cpu is not None:
            used = e.cpu() - cpu0[e.name]
            ours += used
            values[f"{p}_cpu_ms_per_request"] = _per(used, len(s.complete) + len(s.stream))
    values["latency_host_steal_pct"], values["latency_host_other_pct"] = host.shares(ours)
    return values


@dataclass
class Load:
    """Shared state of the clients of :func:`load`."""

    sent: int = 0
    done: list[float] = field(default_factory=list)  # ms of each answered request
    errors: int = 0


async def _client(
    endpoint: Endpoint,
    state: Load,
    *,
    deadline: float,
    total: int,
    stream_every: int,
    at: dict[int, Callable[[], None]],
) -> None:
    conn = ChatConnection(endpoint)
    try:
        while state.sent < total and time.perf_counter() < deadline:
            state.sent += 1
            streamed = stream_every > 0 and state.sent % stream_every == 0
            result = await _timed(conn, streamed)
            if result is None:
                state.errors += 1
                await asyncio.sleep(0.05)
            else:
                state.done.append(result[-1])
            hook = at.get(len(state.done) + state.errors)
            if hook is not None:
                hook()
    finally:
        await conn.close()


async def load(
    endpoint: Endpoint,
    clients: int,
    *,
    seconds: float = float("inf"),
    total: int = sys.maxsize,
    stream_every: int = 0,
    at: dict[int, Callable[[], None]] | None = None,
) -> tuple[Load, float]:
    """``clients`` connections sending requests back to back until ``seconds`` have passed
    or ``total`` requests were sent; every ``stream_every``-th one streams (0: none).

    ``at`` maps a count of finished requests to a function called when it is reached.
    Returns the state and the elapsed seconds.
    """
    state, started = Load(), time.perf_counter()
    deadline = started + seconds
    options = {"deadline": deadline, "total": total, "stream_every": stream_every, "at": at or {}}
    await asyncio.gather(*(_client(endpoint, state, **options) for _ in range(clients)))
    return state, time.perf_counter() - started


async def throughput(
    endpoint: Endpoint, clients: int, seconds: float, meters: dict[str, Callable[[], float]]
) -> dict[str, Any]:
    """Non-streaming requests from ``clients`` connections for ``seconds``, after each client
    sent 5; requests/s and CPU per request of each metered process and of this one."""
    await load(endpoint, clients, total=5 * clients)
    cpu0 = {name: cpu() for name, cpu in meters.items()}
    own0, host = own_cpu(), Host()
    state, elapsed = await load(endpoint, clients, seconds=seconds)
    cpu = {name: meters[name]() - cpu0[name] for name in meters}
    cpu["client"] = own_cpu() - own0
    done = len(state.done)
    values: dict[str, Any] = {"throughput_requests_per_s": done / elapsed}
    for name, seconds_used in cpu.items():
        values[f"throughput_{name}_cpu_ms_per_request"] = _per(seconds_used, done)
    values["throughput_p50_ms"] = percentile(state.done, 50)
    values["throughput_p99_ms"] = percentile(state.done, 99)
    values["throughput_requests"] = done
    values["throughput_errors"] = state.errors
    steal, other = host.shares(sum(cpu.values()))
    values["throughput_host_steal_pct"], values["throughput_host_other_pct"] = steal, other
    return values


async def memory(
    endpoint: Endpoint, clients: int, total: int, rss: Callable[[], float]
) -> dict[str, Any]:
    """``total`` requests (every 10th streamed) from ``clients`` connections; the serving
    process's RSS before, after ``total // 10`` and after ``total`` requests."""
    first = max(1, total // 10)
    marks: dict[str, float] = {"start": rss()}
    at = {first: lambda: marks.setdefault("first", rss())}
    state, elapsed = await load(endpoint, clients, total=total, stream_every=10, at=at)
    marks["last"] = rss()
    marks.setdefault("first", marks["last"])
    return {
        "memory_rss_start_mb": marks["start"],
        "memory_rss_first_mb": marks["first"],
        "memory_rss_last_mb": marks["last"],
        "memory_growth_mb": marks["last"] - marks["first"],
        "memory_requests": len(state.done),
        "memory_requests_per_s": len(state.done) / elapsed,
        "memory_errors": state.errors,
    }


class Host:
    """The machine's CPU from now on: the hypervisor's steal, and what others used."""

    def __init__(self) -> None:
        self._steal0, self._idle0 = host_cpu(), host_ticks()

    def shares(self, ours: float | None = None) -> tuple[float | None, float | None]:
        """``(steal %, other %)`` of the machine's CPU time since this was made; ``ours``:
        the CPU seconds of the measured processes (None: no other % is computed)."""
        steal1, idle1 = host_cpu(), host_ticks()
        ticks = steal1[0] - self._steal0[0]
        if ticks <= 0:
            return None, None
        steal = steal1[1] - self._steal0[1]
        busy = ticks - (idle1[1] - self._idle0[1]) - steal
        other = None if ours is None else max(0.0, busy / CLK_TCK - ours) * CLK_TCK * 100 / ticks
        return 100 * steal / ticks, other


def own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _per(seconds: float, n: int) -> float | None:
    return seconds * 1000 / n if n else None
