"""Re-running a task of a cancelled operation runs exactly what the re-run announces."""

from __future__ import annotations

import asyncio
from pathlib import Path

from crewchief.client.facade import Crewchief
from crewchief.events import EventType
from tests.conftest import make_settings, plan_reply, write_script

# A hang guard, not a speed target: a zero-latency fake model ends these in well under a second.
HANG_GUARD_S = 20


async def test_rerun_of_a_cancelled_operation_runs_the_task_and_its_dependents_only(
    tmp_path: Path,
) -> None:
    # Task 1 finishes at once; tasks 2 and 3 (independent) are still running at the cancel,
    # and task 4 (which depends on 1) waits for that round to end.
    spec = write_script(
        tmp_path,
        [
            {
                "node": "plan",
                "reply": plan_reply("Draft the outline", "Slow two", "Slow three", ("Four", [1])),
            },
            {"node": "execute_task", "match": "Draft the outline", "reply": "outline"},
            {
                "node": "execute_task",
                "match": "Slow",
                "times": 2,
                "reply": {"text": "x", "delay": 60},
            },
            {"node": "execute_task", "match": "Slow", "reply": {"error": "must not run again"}},
            {"node": "execute_task", "match": "Four", "reply": "four"},
            {"node": "synthesize", "reply": "answer"},
        ],
    )
    settings = make_settings(tmp_path / "home")
    async with Crewchief(settings, models={"orchestrator": spec, "delegate": spec}) as cc:
        handle = await cc.start("Write it up", route="plan")
        async with asyncio.timeout(HANG_GUARD_S):
            async for event in handle.events():
                if event.type == EventType.TASK_COMPLETED and event.payload["sequence"] == 1:
                    break
        cancelled = await handle.cancel()
        assert cancelled.status == "cancelled"
        before = {t.sequence: t.status for t in cancelled.tasks}
        assert before == {1: "completed", 2: "cancelled", 3: "cancelled", 4: "cancelled"}
        seen = (await cc.get(cancelled.id, events=True)).events
        rerun = await cc.rerun_task(cancelled.id, 1)
        assert rerun.rerun == {"task": 1, "version": 2, "dependents": [4]}
        async with asyncio.timeout(HANG_GUARD_S):
            after = await rerun.wait()
        after = await cc.get(after.id, events=True)
    tasks = {t.sequence: t for t in after.tasks}
    # Announced: 1 and its dependent 4 ran, each a new version with its events.
    assert (tasks[1].status, tasks[1].version) == ("completed", 2)
    assert (tasks[4].status, tasks[4].version) == ("completed", 2)
    # Not announced: 2 and 3 stay as the cancel left them.
    assert (tasks[2].status, tasks[2].version) == ("cancelled", 1)
    assert (tasks[3].status, tasks[3].version) == ("cancelled", 1)
    new = after.events[len(seen) :]
    ran = sorted(e.payload["sequence"] for e in new if e.type in ("task.started", "task.completed"))
    assert ran == [1, 1, 4, 4]
    # Every state change has its event: nothing moved without one.
    moved = {e.payload["sequence"] for e in new if e.type.startswith("task.")}
    assert moved == {1, 4}
    assert after.status == "failed"
    assert "task 2" in (after.error or "") and "task 3" in (after.error or "")
