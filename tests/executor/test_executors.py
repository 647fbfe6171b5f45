"""One suite, two executors: runs in this process, and runs on worker processes (the queue).

The queue backend starts real ``crewchief worker`` processes on a fresh PostgreSQL
database and Redis prefix; the facade in this process only records, defers and follows.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from crewchief.client.facade import Crewchief
from crewchief.config import Settings
from crewchief.events import EventType
from tests.api.conftest import stop_processes
from tests.conftest import make_settings, plan_reply, write_script

# A hang guard, not a speed target: these runs take a second or two.
HANG_GUARD_S = 60


def _script(tmp_path: Path, slow: float = 0) -> str:
    return write_script(
        tmp_path,
        [
            {"node": "plan", "reply": plan_reply("Quick part", "Slow part", ("Join", [1, 2]))},
            {"node": "execute_task", "match": "Task:\nQuick part", "reply": "quick done"},
            {
                "node": "execute_task",
                "match": "Task:\nSlow part",
                "reply": {"text": "slow done", "delay": slow},
            },
            {"node": "execute_task", "match": "Task:\nJoin", "reply": "joined"},
            {"node": "synthesize", "reply": "all parts joined"},
        ],
    )


def scaled_settings(home: Path, postgres_url: str, redis_url: str, redis_prefix: str) -> Settings:
    """Scaled mode on a test's own database and Redis prefix, with short leases."""
    return make_settings(
        home,
        database_url=postgres_url,
        redis_url=redis_url,
        redis_prefix=redis_prefix,
        executor="queue",
        lease_seconds=3,
    )


class Workers:
    """``crewchief worker`` processes for one settings object."""

    def __init__(self, settings: Settings, spec: str, logs: Path):
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CREWCHIEF_")}
        self.env.update(
            CREWCHIEF_HOME=str(settings.home),
            CREWCHIEF_CONFIG=str(logs / "none.toml"),
            CREWCHIEF_DATABASE_URL=settings.database_url or "",
            CREWCHIEF_REDIS_URL=settings.redis_url or "",
            CREWCHIEF_REDIS_PREFIX=settings.redis_prefix,
            CREWCHIEF_EXECUTOR="queue",
            CREWCHIEF_MODEL=spec,
            CREWCHIEF_ALLOW_MODEL_REQUESTS="0",
            CREWCHIEF_LEASE_SECONDS=str(settings.lease_seconds),
        )
        (logs / "none.toml").write_text("")
        self.logs = logs
        self.processes: list[subprocess.Popen] = []

    def start(self, *args: str) -> subprocess.Popen:
        """Start a worker (``args``: more ``crewchief worker`` options) and wait until ready."""
        log = open(self.logs / f"worker-{len(self.processes)}.log", "w")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "crewchief.cli", "worker", "--concurrency", "4", *args],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.processes.append(process)
        path = self.logs / f"worker-{len(self.processes) - 1}.log"
        deadline = time.monotonic() + HANG_GUARD_S
        while "ready" not in path.read_text():
            assert process.poll() is None, path.read_text()
            assert time.monotonic() < deadline, path.read_text()
            time.sleep(0.05)
        return process

    def stop_all(self) -> None:
        stop_processes(self.processes)


@pytest.fixture(
    params=["process", pytest.param("queue", marks=[pytest.mark.postgres, pytest.mark.slow])]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[..., Settings]]:
    """``backend(spec) -> settings``: in-process runs, or a queue with two live workers."""
    started: list[Workers] = []
    # Requested now, so the database outlives the workers (torn down after this fixture).
    queue = {}
    if request.param == "queue":
        queue = {
            name: request.getfixturevalue(name)
            for name in ("postgres_url", "redis_url", "redis_prefix")
        }

    def make(spec: str) -> Settings:
        home = tmp_path / "home"
        if request.param == "process":
            return make_settings(home)
        settings = scaled_settings(home, **queue)
        workers = Workers(settings, spec, tmp_path)
        started.append(workers)
        workers.start()
        workers.start()
        return settings

    make.kind = request.param  # type: ignore[attr-defined]
    yield make
    for workers in started:
        workers.stop_all()


def _chief(settings: Settings, spec: str) -> Crewchief:
    return Crewchief(settings, models={"orchestrator": spec, "delegate": spec})


async def _wait(handle: Any) -> Any:
    async with asyncio.timeout(HANG_GUARD_S):
        return await handle.wait()


async def test_an_operation_runs_to_its_end(tmp_path: Path, backend: Any) -> None:
    spec = _script(tmp_path)
    settings = backend(spec)
    async with _chief(settings, spec) as cc:
        result = await _wait(await cc.start("Join the parts", route="plan"))
        stored = await cc.get(result.id, events=True)
        if settings.executor == "queue":
            # One job, enqueued by the transaction that recorded the operation (the rows
            # neither transaction touched again carry its id).
            rows = await cc.services.store.read(
                lambda tx: tx.execute(
                    "SELECT e.xmin::text, s.xmin::text FROM procrastinate_jobs j"
                    " JOIN procrastinate_events e ON e.job_id = j.id AND e.type = 'deferred'"
                    " JOIN operation_events s ON s.operation_id = :op AND s.seq = 1"
                    " WHERE j.lock = :lock",
                    {"op": result.id, "lock": f"op:{result.id}"},
                ).fetchall()
            )
            assert len(rows) == 1 and rows[0][0] == rows[0][1], rows
    assert result.status == "completed", result.error
    assert [t.status for t in result.tasks] == ["completed"] * 3
    assert [e.seq for e in stored.events] == list(range(1, len(stored.events) + 1))


async def test_cancel_stops_a_running_operation(tmp_path: Path, backend: Any) -> None:
    spec = _script(tmp_path, slow=120)
    async with _chief(backend(spec), spec) as cc:
        handle = await cc.start("Join the parts", route="plan")
        async with asyncio.timeout(HANG_GUARD_S):
            async for event in handle.events():
                if event.type == EventType.TASK_STARTED and event.payload["sequence"] == 2:
                    break
        began = time.monotonic()
        result = await cc.cancel(handle.id)
        took = time.monotonic() - began
    assert result.status == "cancelled"
    assert {t.sequence: t.status for t in result.tasks}[2] == "cancelled"
    assert took < HANG_GUARD_S  # the 120 s model call was interrupted, not waited for


async def test_a_plan_decision_continues_the_run(tmp_path: Path, backend: Any) -> None:
    spec = _script(tmp_path)
    async with _chief(backend(spec), spec) as cc:
        waiting = await _wait(await cc.start("Join the parts", route="plan", approve_plan=True))
        assert waiting.status == "awaiting_approval"
        done = await _wait(await cc.review_plan(waiting.id, {"action": "accept"}))
    assert done.status == "completed", done.error


async def test_a_task_rerun_runs_the_task_and_its_dependents(tmp_path: Path, backend: Any) -> None:
    spec = _script(tmp_path)
    async with _chief(backend(spec), spec) as cc:
        first = await _wait(await cc.start("Join the parts", route="plan"))
        handle = await cc.rerun_task(first.id, 1)
        again = await _wait(handle)
    assert again.status == "completed", again.error
    versions = {t.sequence: t.version for t in again.tasks}
    assert versions == {1: 2, 2: 1, 3: 2}
