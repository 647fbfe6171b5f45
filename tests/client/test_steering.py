"""Steering in the library: ``Crewchief.review_plan`` and ``Crewchief.rerun_task``."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from crewchief.client.facade import Crewchief
from crewchief.errors import OperationStateError, TaskNotFound
from crewchief.steering import EditPlan, InvalidDecision, dependents, edited_tasks
from tests.conftest import make_settings, plan_reply, write_script

FEEDBACK = "Only two steps"
# A hang guard, not a speed target: these operations run on a zero-latency fake model and
# normally end (or stop for review) in well under a second.
HANG_GUARD_S = 20


def script(tmp_path: Path) -> str:
    return write_script(
        tmp_path,
        [
            {"node": "plan", "match": FEEDBACK, "reply": plan_reply("Step A", ("Step B", [1]))},
            {
                "node": "plan",
                "reply": plan_reply("Gather facts", ("Analyse facts", [1]), "Write intro"),
            },
            {"node": "execute_task", "match": "Write intro", "times": 1, "reply": "intro v1"},
            {"node": "execute_task", "match": "Write intro", "reply": {"error": "ran twice"}},
        ],
    )


def chief(tmp_path: Path, spec: str, **overrides) -> Crewchief:
    settings = make_settings(tmp_path / "home", **overrides)
    return Crewchief(settings, models={"orchestrator": spec, "delegate": spec})


async def wait(handle) -> object:
    return await asyncio.wait_for(handle.wait(), timeout=HANG_GUARD_S)


async def awaiting(cc: Crewchief, **kwargs) -> str:
    handle = await cc.start("Write a report", route="plan", approve_plan=True, **kwargs)
    result = await wait(handle)
    assert result.status == "awaiting_approval", result.error
    return result.id


async def test_accept_edit_replan_reject(tmp_path: Path) -> None:
    async with chief(tmp_path, script(tmp_path)) as cc:
        op = await awaiting(cc)
        done = await wait(await cc.review_plan(op, {"action": "accept"}))
        assert done.status == "completed"
        assert [t.description for t in done.tasks] == [
            "Gather facts",
            "Analyse facts",
            "Write intro",
        ]

        op = await awaiting(cc)
        edit = EditPlan(action="edit", tasks=[{"description": "Only this"}])
        done = await wait(await cc.review_plan(op, edit))
        assert done.status == "completed"
        assert [(t.sequence, t.description, t.status) for t in done.tasks] == [
            (1, "Only this", "completed")
        ]

        op = await awaiting(cc)
        waiting = await wait(await cc.review_plan(op, {"action": "replan", "feedback": FEEDBACK}))
        assert waiting.status == "awaiting_approval"
        assert [t.description for t in waiting.tasks] == ["Step A", "Step B"]
        rejected = await wait(await cc.review_plan(op, {"action": "reject"}))
        assert (rejected.status, rejected.error) == ("rejected", "plan rejected")
        assert all(t.status != "completed" for t in rejected.tasks)


async def test_a_plan_waits_across_a_restart(tmp_path: Path) -> None:
    spec = script(tmp_path)
    async with chief(tmp_path, spec) as cc:
        op = await awaiting(cc)
    async with chief(tmp_path, spec) as cc:
        with pytest.raises(OperationStateError, match="review_plan"):
            await cc.resume(op)
        done = await wait(await cc.review_plan(op, {"action": "accept"}))
        assert done.status == "completed"
        assert len(done.tasks) == 3


async def test_steering_right_after_the_event(tmp_path: Path) -> None:
    """A decision or re-run sent as soon as the event arrives (the run still winding down)."""
    async with chief(tmp_path, script(tmp_path)) as cc:
        handle = await cc.start("Write a report", route="plan", approve_plan=True)
        async for event in handle.events():
            if event.type == "plan.awaiting_approval":
                break
        accepted = await cc.review_plan(handle.id, {"action": "accept"})
        async for _ in accepted.events():
            pass  # up to operation.completed
        rerun = await cc.rerun_task(handle.id, 3, instructions="Shorter")
        assert rerun.rerun == {"task": 3, "version": 2, "dependents": []}
        result = await wait(rerun)
        assert result.status == "failed"  # the script refuses a second run of task 3
        assert "ran twice" in result.tasks[2].error


async def test_one_decision_per_round(tmp_path: Path) -> None:
    async with chief(tmp_path, script(tmp_path)) as cc:
        op = await awaiting(cc)
        outcomes = await asyncio.gather(
            cc.review_plan(op, {"action": "accept"}),
            cc.review_plan(op, {"action": "reject", "reason": "no"}),
            return_exceptions=True,
        )
        handles = [o for o in outcomes if not isinstance(o, BaseException)]
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        assert len(handles) == 1, outcomes
        assert isinstance(errors[0], OperationStateError)
        result = await wait(handles[0])
        assert result.status in ("completed", "rejected")
        events = (await cc.get(op, events=True)).events
        assert [e.type for e in events].count("plan.reviewed") == 1


async def test_invalid_edits_record_nothing(tmp_path: Path) -> None:
    async with chief(tmp_path, script(tmp_path)) as cc:
        op = await awaiting(cc)
        bad = [
            ({"action": "edit", "tasks": [{"description": "a", "depends_on": [1]}]}, "depends_on"),
            ({"action": "edit", "tasks": [{"description": "a", "skill": "testing"}]}, "skill"),
            ({"action": "edit", "tasks": [{"description": "x"}] * 13}, "tasks"),
            ({"action": "maybe"}, "action"),
        ]
        for decision, field in bad:
            with pytest.raises(InvalidDecision) as info:
                await cc.review_plan(op, decision)
            assert info.value.details[0]["path"].endswith(field)
        current = await cc.get(op, events=True)
        assert current.status == "awaiting_approval"
        assert "plan.reviewed" not in [e.type for e in current.events]


async def test_edit_may_name_a_skill_with_a_workspace(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "notes.md").write_text("# Notes\n")
    async with chief(tmp_path, script(tmp_path)) as cc:
        op = await awaiting(cc, workspace=workspace)
        edit = {
            "action": "edit",
            "tasks": [{"description": "Review notes.md", "skill": "documentation"}],
        }
        done = await wait(await cc.review_plan(op, edit))
        assert done.status == "completed", done.error
        assert done.tasks[0].skill == "documentation"


async def test_rerun_twice_keeps_every_version(tmp_path: Path) -> None:
    spec = script(tmp_path)
    async with chief(tmp_path, spec) as cc:
        first = await cc.run("Write a report", route="plan")
        assert first.status == "completed"
    async with chief(tmp_path, spec) as cc:  # a re-run works from the stored checkpoints
        handle = await cc.rerun_task(first.id, 1, instructions="Be brief")
        assert handle.rerun == {"task": 1, "version": 2, "dependents": [2]}
        second = await wait(handle)
        assert second.status == "completed", second.error
        handle = await cc.rerun_task(first.id, 2, description="Analyse the facts again")
        assert handle.rerun == {"task": 2, "version": 3, "dependents": []}
        third = await wait(handle)
        events = [e.type for e in (await cc.get(first.id, events=True)).events]
    assert third.status == "completed", third.error
    t1, t2, t3 = third.tasks
    assert (t1.version, t2.version, t3.version) == (2, 3, 1)
    assert [h.version for h in t2.history] == [2, 1]
    assert t2.history[1].description == "Analyse facts"
    assert t2.description == "Analyse the facts again"
    assert t1 == second.tasks[0]
    assert t3.result == "intro v1"  # it would have failed had it run again
    assert events.count("task.rerun") == 2
    assert events.count("operation.completed") == 3


async def test_concurrent_reruns_start_one_run(tmp_path: Path) -> None:
    async with chief(tmp_path, script(tmp_path)) as cc:
        first = await cc.run("Write a report", route="plan")
        outcomes = await asyncio.gather(
            cc.rerun_task(first.id, 1), cc.rerun_task(first.id, 1), return_exceptions=True
        )
        handles = [o for o in outcomes if not isinstance(o, BaseException)]
        assert len(handles) == 1, outcomes
        assert isinstance(next(o for o in outcomes if o not in handles), OperationStateError)
        result = await wait(handles[0])
        assert result.status == "completed"
        assert [t.version for t in result.tasks] == [2, 2, 1]


async def test_rerun_refusals(tmp_path: Path) -> None:
    spec = write_script(
        tmp_path,
        [
            {"node": "plan", "reply": plan_reply("Fetch", ("Use it", [1]))},
            {"node": "execute_task", "match": "Task:\nFetch", "reply": {"error": "offline"}},
        ],
    )
    async with chief(tmp_path, spec) as cc:
        failed = await cc.run("Do it", route="plan")
        assert failed.status == "failed"
        with pytest.raises(OperationStateError, match="depends on task 1"):
            await cc.rerun_task(failed.id, 2)
        with pytest.raises(TaskNotFound):
            await cc.rerun_task(failed.id, 3)
        assert (await cc.get(failed.id)) == failed


def test_dependents_are_transitive_and_in_plan_order() -> None:
    plan = [
        {"id": 1, "depends_on": []},
        {"id": 2, "depends_on": [1]},
        {"id": 3, "depends_on": []},
        {"id": 4, "depends_on": [2, 3]},
    ]
    assert dependents(plan, 1) == [2, 4]
    assert dependents(plan, 3) == [4]
    assert dependents(plan, 4) == []


def test_edited_tasks_fill_in_what_is_missing() -> None:
    edit = EditPlan(
        action="edit",
        tasks=[{"description": " Write tests "}, {"description": "Run them", "depends_on": [1, 1]}],
    )
    tasks = edited_tasks(edit, skills=set(), max_tasks=5)
    assert [t["description"] for t in tasks] == ["Write tests", "Run them"]
    assert tasks[1]["depends_on"] == [1]
    assert all(t["active_form"] for t in tasks)
    with pytest.raises(InvalidDecision, match="at most 1"):
        edited_tasks(edit, skills=set(), max_tasks=1)
