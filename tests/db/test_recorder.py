"""The recorder's guarantees on each backend: gap-free numbering, nothing recorded twice.

Every test runs against the SQL recorder on SQLite and PostgreSQL, and against the
in-memory recorder of runs that persist nothing (``persist: false``). What the
in-memory one keeps is read from the events it published, which is all its users see.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from crewchief.config import Settings
from crewchief.db import repository
from crewchief.events import EventType
from crewchief.models.types import Usage
from crewchief.runtime.services import Services
from crewchief.simplicity.detector import Decision
from tests.conftest import make_settings


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "memory"])
async def services(request: pytest.FixtureRequest, tmp_path):
    settings: Settings = make_settings(tmp_path / "home")
    if request.param == "postgres":
        settings = make_settings(
            tmp_path / "home", database_url=request.getfixturevalue("postgres_url")
        )
    svc = await Services.open(settings, persist=request.param != "memory")
    # Every event published, whatever the operation: the in-memory backend's record.
    sub = svc.bus.subscribe()
    svc.published = []  # type: ignore[attr-defined]
    svc.drain = lambda: svc.published.extend(  # type: ignore[attr-defined]
        sub.queue.get_nowait() for _ in range(sub.queue.qsize())
    )
    yield svc
    sub.close()
    await svc.close()


async def _events(services: Any, op: str) -> list[Any]:
    """The operation's stored events (SQL; they must match what was published), else published."""
    services.drain()
    published = [e for e in services.published if e.operation_id == op and e.seq is not None]
    if services.store is None:
        return published
    stored = await repository.list_events(services.store, op)
    assert [(e.seq, str(e.type)) for e in published] == [(e.seq, e.type) for e in stored]
    return stored


async def test_replayed_writes_record_nothing_twice(services: Services) -> None:
    rec = services.recorder
    tasks = [
        {"id": 1, "description": "a", "active_form": "doing a", "skill": None, "depends_on": []}
    ]
    for _ in range(2):  # as if the node ran again after a crash
        await rec.create_operation(operation_id="op-1", request="r", workspace=None)
        await rec.route_decided(
            "op-1", Decision(score=0.1, route="plan", tier="deep", reasons=["x"])
        )
        await rec.plan_generated("op-1", tasks=tasks, text="1. a", usage=Usage(10, 5, 0))
        await rec.task_started("op-1", 1, "doing a")
        await rec.task_completed("op-1", 1, result="done", model="fake:x", usage=Usage(1, 1, 0))
        await rec.finish("op-1", "completed", answer="ok")
    events = await _events(services, "op-1")
    assert [str(e.type) for e in events] == [
        "operation.started",
        "route.decided",
        "plan.generated",
        "task.created",
        "task.started",
        "task.completed",
        "operation.completed",
    ]
    assert [e.seq for e in events] == [1, 2, 3, 4, 5, 6, 7]
    # The replayed task_started saw the task had ended: it changed nothing.
    assert await rec.task_started("op-1", 1, "doing a") is not None
    if services.store is not None:
        result = await repository.get_operation(services.store, "op-1")
        assert len(result.tasks) == 1 and result.tasks[0].status == "completed"


async def test_concurrent_writers_get_gap_free_sequence_numbers(services: Services) -> None:
    rec = services.recorder
    await rec.create_operation(operation_id="op-2", request="r", workspace=None)
    tasks = [
        {"id": i, "description": f"t{i}", "active_form": f"t{i}", "skill": None, "depends_on": []}
        for i in range(1, 21)
    ]
    await rec.plan_generated("op-2", tasks=tasks, text="", usage=Usage())
    await asyncio.gather(*(rec.task_started("op-2", i, f"t{i}") for i in range(1, 21)))
    events = await _events(services, "op-2")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert sum(1 for e in events if e.type == EventType.TASK_STARTED) == 20


async def test_events_are_published_after_they_are_stored(services: Services) -> None:
    sub = services.bus.subscribe("op-3")
    await services.recorder.create_operation(operation_id="op-3", request="r", workspace=None)
    event = sub.queue.get_nowait()
    stored = await _events(services, "op-3")
    assert (event.seq, str(event.type)) == (stored[0].seq, str(stored[0].type))
    sub.close()
