"""The recorder's guarantees on each backend: gap-free numbering, nothing recorded twice."""

from __future__ import annotations

import asyncio

import pytest

from crewchief.config import Settings
from crewchief.db import repository
from crewchief.events import EventType
from crewchief.models.registry import Usage
from crewchief.runtime.services import Services
from crewchief.simplicity.detector import Decision


@pytest.fixture
async def services(backend_settings: Settings):
    svc = await Services.open(backend_settings)
    yield svc
    await svc.close()


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
    result = await repository.get_operation(services.store, "op-1", include_events=True)
    assert [e.type for e in result.events] == [
        "operation.started",
        "route.decided",
        "plan.generated",
        "task.created",
        "task.started",
        "task.completed",
        "operation.completed",
    ]
    assert [e.seq for e in result.events] == [1, 2, 3, 4, 5, 6, 7]
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
    events = await repository.list_events(services.store, "op-2")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert sum(1 for e in events if e.type == EventType.TASK_STARTED) == 20


async def test_events_are_published_after_they_are_stored(services: Services) -> None:
    sub = services.bus.subscribe("op-3")
    await services.recorder.create_operation(operation_id="op-3", request="r", workspace=None)
    event = sub.queue.get_nowait()
    stored = await repository.list_events(services.store, "op-3")
    assert (event.seq, str(event.type)) == (stored[0].seq, stored[0].type)
    sub.close()
