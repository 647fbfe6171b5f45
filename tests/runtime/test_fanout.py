"""Events reach a follower in another process, in order, with nothing lost or repeated.

One suite, two backends: embedded (SQLite, the in-process bus and database polling)
and scaled (PostgreSQL, Redis pub/sub). Two ``Crewchief`` instances on one database
stand for two processes: each has its own bus, writer and poller, and they share
only what two processes share (the database, and Redis when configured).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from crewchief.api.sse import event_stream
from crewchief.client.facade import Crewchief
from crewchief.events import Event, EventType
from crewchief.runtime.fanout import RedisBus
from tests.api.conftest import _server_factory, sse_events
from tests.conftest import (
    local_metrics,
    make_settings,
    metric_total,
    plan_reply,
    write_script,
)

# A hang guard, not a speed target: these runs take a second or two.
HANG_GUARD_S = 30


def _script(tmp_path: Path, delay: float = 0.2) -> str:
    """A plan of three tasks, each answered after ``delay`` seconds: events spread over time."""
    return write_script(
        tmp_path,
        [
            {"node": "plan", "reply": plan_reply("Read A", "Read B", ("Sum up", [1, 2]))},
            {"node": "execute_task", "reply": {"text": "done", "delay": delay}},
            {"node": "synthesize", "reply": "answer"},
        ],
    )


@pytest.fixture(params=["embedded", pytest.param("scaled", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Settings fields for each backend."""
    if request.param == "embedded":
        return {"events_poll_seconds": 0.2}
    return {
        "database_url": request.getfixturevalue("postgres_url"),
        "redis_url": request.getfixturevalue("redis_url"),
        "redis_prefix": request.getfixturevalue("redis_prefix"),
        # Slow on purpose: on this backend events must arrive through Redis.
        "events_poll_seconds": 30,
    }


async def _follow(chief: Crewchief, op: str, after: int = 0) -> list[dict[str, Any]]:
    """The SSE frames a client of ``chief`` receives for ``op``, until the stream ends."""
    frames = []
    async with asyncio.timeout(HANG_GUARD_S):
        async for chunk in event_stream(chief, op, after=after, heartbeat=5):
            for block in chunk.decode().split("\n\n"):
                lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
                if "id" in lines:
                    frames.append({"seq": int(lines["id"]), "type": lines["event"]})
    return frames


async def test_a_follower_elsewhere_sees_every_event_in_order(
    tmp_path: Path, backend: dict[str, Any]
) -> None:
    settings = make_settings(tmp_path / "home", **backend)
    spec = _script(tmp_path)
    async with (
        Crewchief(settings, models={"orchestrator": spec, "delegate": spec}) as runner,
        Crewchief(settings) as other,
    ):
        handle = await runner.start("Sum up A and B", route="plan")
        handle.detach()
        frames = await _follow(other, handle.id)
        stored = (await other.get(handle.id, events=True)).events
        if isinstance(other.services.bus, RedisBus):
            assert other.services.bus.cross_process
            assert other.services.bus.received > 0
    assert [f["seq"] for f in frames] == [e.seq for e in stored] == list(range(1, len(stored) + 1))
    assert frames[-1]["type"] == "operation.completed"
    assert [f["type"] for f in frames] == [e.type for e in stored]


async def test_a_follower_reads_what_a_lost_message_skipped(
    tmp_path: Path, backend: dict[str, Any]
) -> None:
    settings = make_settings(tmp_path / "home", **backend)
    spec = _script(tmp_path, delay=0)
    async with (
        Crewchief(settings, models={"orchestrator": spec, "delegate": spec}) as runner,
        Crewchief(settings) as other,
    ):
        op = (await runner.run("Sum up A and B", route="plan")).id
        stored = (await other.get(op, events=True)).events
        task = asyncio.create_task(_follow(other, op, after=2))
        await asyncio.sleep(0.2)
        # Only the newest event reaches this process (the others were "lost" on the way).
        last = stored[-1]
        other.services.bus.publish(
            Event(op, EventType(last.type), last.payload, last.seq, last.created_at)
        )
        frames = await task
    assert [f["seq"] for f in frames] == [e.seq for e in stored[2:]]


@pytest.mark.postgres
async def test_a_watcher_elsewhere_gets_every_token_delta(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    """Token deltas are never stored: a client streaming from another process gets them live,
    through Redis, or not at all. Its runner learns at once that somebody watches, so none
    goes missing. (Without Redis, other processes see stored events only.)"""
    settings = make_settings(
        tmp_path / "home",
        database_url=postgres_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        events_poll_seconds=30,
    )
    chunks = [f"part {i}. " for i in range(12)]
    spec = write_script(
        tmp_path,
        [
            {"node": "plan", "reply": plan_reply("Read A", "Read B", ("Sum up", [1, 2]))},
            {"node": "execute_task", "reply": {"text": "done", "delay": 0.3}},
            {"node": "synthesize", "reply": {"chunks": chunks, "token_delay": 0.01}},
        ],
    )
    async with (
        Crewchief(settings, models={"orchestrator": spec, "delegate": spec}) as runner,
        Crewchief(settings) as other,
    ):
        handle = await runner.start("Sum up A and B", route="plan")
        handle.detach()
        texts = []
        async with asyncio.timeout(HANG_GUARD_S):
            async for chunk in event_stream(other, handle.id, after=0, heartbeat=5):
                for block in chunk.decode().split("\n\n"):
                    lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
                    if lines.get("event") == "model.delta":
                        payload = json.loads(lines["data"])["payload"]
                        if payload["node"] == "synthesize":
                            texts.append(payload["text"])
    assert "".join(texts) == "".join(chunks)


# -- Redis going away mid-stream ---------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class OwnRedis:
    """A redis-server of this test's own on a free loopback port, killed and restarted at will."""

    def __init__(self, workdir: Path):
        self.port = _free_port()
        self.workdir = workdir
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed")
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + HANG_GUARD_S
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=HANG_GUARD_S)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.kill()


@pytest.mark.postgres
async def test_streams_survive_redis_going_away_and_go_live_when_it_is_back(
    tmp_path: Path, postgres_url: str, own_redis: OwnRedis, caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(
        tmp_path / "home",
        database_url=postgres_url,
        redis_url=own_redis.url,
        redis_prefix="crewchief-test",
        events_poll_seconds=0.2,
    )
    spec = _script(tmp_path, delay=0.5)
    caplog.set_level(logging.INFO, logger="crewchief.runtime.fanout")
    async with (
        Crewchief(settings, models={"orchestrator": spec, "delegate": spec}) as runner,
        Crewchief(settings) as other,
    ):
        bus = other.services.bus
        assert isinstance(bus, RedisBus) and bus.cross_process
        handle = await runner.start("Sum up A and B", route="plan")
        handle.detach()
        follow = asyncio.create_task(_follow(other, handle.id))
        await asyncio.sleep(0.3)  # some events went through Redis...
        fallbacks = metric_total(local_metrics(), "crewchief_event_bus_fallbacks_total")
        own_redis.kill()  # ...then it is gone while the tasks run
        frames = await follow
        seen = local_metrics()  # and /metrics says so
        assert metric_total(seen, "crewchief_event_bus_degraded") == 1
        assert metric_total(seen, "crewchief_event_bus_fallbacks_total") > fallbacks
        stored = (await other.get(handle.id, events=True)).events
        assert [f["seq"] for f in frames] == [e.seq for e in stored]
        assert frames[-1]["type"] == "operation.completed"
        assert bus.fallbacks >= 1
        assert "fall back to polling the database" in caplog.text

        own_redis.start()
        async with asyncio.timeout(HANG_GUARD_S):
            # Polling a flag the buses set from their own reconnect loops.
            while not (bus.cross_process and runner.services.bus.cross_process):  # noqa: ASYNC110
                await asyncio.sleep(0.1)
        assert "streams are live again" in caplog.text
        assert metric_total(local_metrics(), "crewchief_event_bus_degraded") == 0
        received = bus.received
        second = await runner.start("Sum up A and B again", route="plan")
        second.detach()
        frames = await _follow(other, second.id)
        assert frames[-1]["type"] == "operation.completed"
        assert bus.received > received  # live through Redis again


# -- a real server following another process's writes ----------------------------------------


def test_a_server_stream_follows_events_another_process_writes(tmp_path: Path) -> None:
    """Embedded mode: a run in this process, its stream served by ``crewchief serve``."""
    (tmp_path / "servers").mkdir()
    factory = _server_factory(tmp_path / "servers")
    start = next(factory)
    try:
        server = start(env={"CREWCHIEF_EVENTS_POLL": "0.2"}, args=["--no-auth"])
        settings = make_settings(server.home)
        spec = _script(tmp_path, delay=0.3)

        async def run() -> tuple[str, str]:
            async with Crewchief(settings, models={"orchestrator": spec, "delegate": spec}) as cc:
                handle = await cc.start("Sum up A and B", route="plan")
                handle.detach()
                url = f"{server.url}/v1/operations/{handle.id}/events"
                # Keep-alives reset httpx's read timeout: the hang guard bounds the whole stream.
                async with (
                    asyncio.timeout(HANG_GUARD_S),
                    httpx.AsyncClient(timeout=HANG_GUARD_S) as client,
                ):
                    async with client.stream("GET", url) as r:
                        assert r.status_code == 200, await r.aread()
                        body = "".join([text async for text in r.aiter_text()])
                await handle.wait()
                return body, handle.id

        body, op = asyncio.run(run())
    finally:
        with contextlib.suppress(StopIteration):
            next(factory)  # stops the server
    events = sse_events(body)
    ids = [int(e["id"]) for e in events if "id" in e]
    assert ids == list(range(1, len(ids) + 1))
    assert events[-1]["event"] == "operation.completed"
    assert events[-1]["data"]["operation_id"] == op
