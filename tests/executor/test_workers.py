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

import pytest

from crewchief.client.facade import Crewchief
from crewchief.config import Settings
from crewchief.events import EventType
from tests.executor.test_executors import HANG_GUARD_S, Workers, _script, scaled_settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


@pytest.fixture
def scaled(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str
) -> Iterator[tuple[Settings, str, Workers]]:
    spec = _script(tmp_path, slow=3)
    settings = scaled_settings(tmp_path / "home", postgres_url, redis_url, redis_prefix)
    workers = Workers(settings, spec, tmp_path)
    workers.start()
    workers.start()
    yield settings, spec, workers
    workers.stop_all()


async def _run_and_stop_its_worker(
    settings: Settings, spec: str, workers: Workers, sig: signal.Signals
) -> tuple[object, list, float]:
    """Start an operation, send ``sig`` to the worker running its slow task; the outcome."""
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


async def test_a_stopped_worker_hands_its_operation_back(scaled) -> None:
    settings, spec, workers = scaled
    result, events, _ = await _run_and_stop_its_worker(settings, spec, workers, signal.SIGTERM)
    assert result.status == "completed", result.error
    _assert_each_task_once(events)
    types = [e.type for e in events]
    assert "operation.cancelled" not in types  # a deploy never cancels users' operations
