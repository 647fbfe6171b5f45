"""Workers die or stop mid-operation; the operation finishes on another, every task once.

Real ``crewchief worker`` processes on PostgreSQL and Redis, killed with SIGKILL or
stopped with SIGTERM while a task runs.
"""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from crewchief.client.facade import Crewchief
from crewchief.config import Settings
from crewchief.events import EventType
from tests.api.conftest import free_port
from tests.conftest import metric_samples, metric_total
from tests.executor.test_executors import HANG_GUARD_S, Workers, _script, scaled_settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture(params=[None])
def scaled(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    postgres_url: str,
    redis_url: str,
    redis_prefix: str,
) -> Iterator[tuple[Settings, str, Workers]]:
    """Two workers, each serving its metrics (``workers.metrics_ports``: pid → port); the slow
    task takes 3 s. ``request.param``: their ``--drain-seconds``."""
    spec = _script(tmp_path, slow=3)
    settings = scaled_settings(tmp_path / "home", postgres_url, redis_url, redis_prefix)
    workers = Workers(settings, spec, tmp_path)
    args = ["--drain-seconds", str(request.param)] if request.param is not None else []
    workers.metrics_ports = {}
    for _ in range(2):
        port = free_port()
        started = workers.start(*args, "--metrics-port", str(port))
        workers.metrics_ports[started.pid] = port
    yield settings, spec, workers
    workers.stop_all()


async def _run_and_stop_its_worker(
    settings: Settings, spec: str, workers: Workers, sig: signal.Signals
) -> tuple[object, list, float]:
    """Start an operation, send ``sig`` to the worker running its slow task; the outcome.

    Checks too that the other worker's own ``/metrics`` counts the takeover, and why.
    """
    async with Crewchief(settings, models={"orchestrator": spec, "delegate": spec}) as cc:
        handle = await cc.start("Join the parts", route="plan")
        async with asyncio.timeout(HANG_GUARD_S):
            async for event in handle.events():
                if event.type == EventType.TASK_STARTED and event.payload["sequence"] == 2:
                    break
        store = cc.services.store
        (lease,) = await store.read(
            lambda tx: tx.one(
                "SELECT lease_holder FROM operations WHERE id = :op", {"op": handle.id}
            )
        )
        pid = int(lease.split(":")[1])
        (victim,) = [p for p in workers.processes if p.pid == pid]
        stopped_at = datetime.now(UTC)
        victim.send_signal(sig)
        async with asyncio.timeout(HANG_GUARD_S):
            result = await handle.wait()
        events = (await cc.get(handle.id, events=True)).events
        resumed = next(e for e in events if e.type == "operation.resumed")
        took = (resumed.created_at - stopped_at).total_seconds()
        if sig == signal.SIGTERM:
            assert victim.wait(timeout=HANG_GUARD_S) == 0  # it stopped cleanly, and promptly
        (survivor,) = [p for p in workers.processes if p.pid != pid]
        port = workers.metrics_ports[survivor.pid]
        async with httpx.AsyncClient(timeout=10) as client:
            seen = metric_samples((await client.get(f"http://127.0.0.1:{port}/metrics")).text)
        reason = "crash" if sig == signal.SIGKILL else "handback"
        assert metric_total(seen, "crewchief_operation_takeovers_total", reason=reason) == 1
        assert metric_total(seen, "crewchief_operation_takeovers_total") == 1
        return result, events, took


def _assert_each_task_once(events: list) -> None:
    assert [e.seq for e in events] == list(range(1, len(events) + 1))  # no gap, no repeat
    completed = [e.payload["sequence"] for e in events if e.type == "task.completed"]
    assert sorted(completed) == [1, 2, 3]


async def test_a_killed_workers_operation_finishes_on_another(scaled) -> None:
    settings, spec, workers = scaled
    result, events, took = await _run_and_stop_its_worker(settings, spec, workers, signal.SIGKILL)
    assert result.status == "completed", result.error
    _assert_each_task_once(events)
    assert took < HANG_GUARD_S
    print(json.dumps({"sigkill_to_running_again_s": round(took, 2)}))


async def test_a_stopped_worker_finishes_its_step_and_hands_the_rest_back(scaled) -> None:
    """The slow task runs when SIGTERM comes: it finishes on the stopping worker (run once,
    its 3 s not spent again); the next worker goes on from there."""
    settings, spec, workers = scaled
    result, events, _ = await _run_and_stop_its_worker(settings, spec, workers, signal.SIGTERM)
    assert result.status == "completed", result.error
    _assert_each_task_once(events)
    types = [e.type for e in events]
    assert "operation.cancelled" not in types  # a deploy never cancels users' operations
    resumed = types.index("operation.resumed")
    done = next(
        i for i, e in enumerate(events) if e.type == "task.completed" and e.payload["sequence"] == 2
    )
    assert done < resumed
    joins = [e for e in events if e.type == "task.started" and e.payload["sequence"] == 3]
    assert len(joins) == 1 and events.index(joins[0]) > resumed


@pytest.mark.parametrize("scaled", [0.5], indirect=True)
async def test_a_step_longer_than_the_drain_is_stopped_and_done_again(scaled) -> None:
    settings, spec, workers = scaled
    result, events, _ = await _run_and_stop_its_worker(settings, spec, workers, signal.SIGTERM)
    assert result.status == "completed", result.error
    _assert_each_task_once(events)  # it still completes once
    assert "operation.cancelled" not in [e.type for e in events]
    # Cut after 0.5 s: the other worker ran the slow task again, from its start.
    types = [e.type for e in events]
    done = next(
        i for i, e in enumerate(events) if e.type == "task.completed" and e.payload["sequence"] == 2
    )
    assert done > types.index("operation.resumed")
