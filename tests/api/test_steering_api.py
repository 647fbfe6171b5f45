"""Steering over REST: a plan that awaits approval (accept, edit, replan, reject), task re-runs."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import plan_reply, write_script

FEEDBACK = "Split it by file, please"
ORIGINAL = ["Survey the code", "Fix the parser", "Write the changelog"]
REVISED = ["Survey utils.py", "Survey cli.py"]
INSTRUCTION = "Look only at the public functions"
TERMINAL = ("completed", "failed", "cancelled", "rejected")


def review_script(tmp_path: Path) -> str:
    """The planner plans ORIGINAL, or REVISED once the reviewer's feedback is in its prompt."""
    return write_script(
        tmp_path,
        [
            {"node": "plan", "match": FEEDBACK, "reply": plan_reply(*REVISED)},
            {"node": "plan", "reply": plan_reply(*ORIGINAL)},
        ],
    )


def rerun_script(tmp_path: Path) -> str:
    """Three tasks: 2 needs 1, 3 stands alone (and may run only once)."""
    return write_script(
        tmp_path,
        [
            {
                "node": "plan",
                "reply": plan_reply(
                    "Collect the metrics", ("Chart the metrics", [1]), "Draft the summary"
                ),
            },
            {"node": "execute_task", "match": INSTRUCTION, "reply": "metrics v2 (public only)"},
            {"node": "execute_task", "match": "Draft the summary", "times": 1, "reply": "summary"},
            {"node": "execute_task", "match": "Draft the summary", "reply": {"error": "ran twice"}},
            {"node": "execute_task", "match": "Task:\nCollect", "reply": "metrics v1"},
            {"node": "execute_task", "match": "Task:\nChart", "reply": "chart"},
            {"node": "synthesize", "replies": ["answer one", "answer two"]},
        ],
    )


async def get(api: Any, op: str, owner: str = "alice", **params: Any) -> dict[str, Any]:
    r = await api.client.get(f"/v1/operations/{op}", params=params, headers=api.auth(owner))
    assert r.status_code == 200, r.text
    return r.json()


async def wait_for(api: Any, op: str, *statuses: str, limit: float = 20) -> dict[str, Any]:
    """Poll until the operation has one of ``statuses`` (a hang guard fails the test)."""
    deadline = time.monotonic() + limit
    while True:
        body = await get(api, op)
        if body["status"] in statuses:
            return body
        assert time.monotonic() < deadline, f"still {body['status']} after {limit}s"
        await asyncio.sleep(0.02)


async def wait_events(api: Any, op: str, type_: str, count: int, limit: float = 20) -> list:
    """Poll until ``count`` events of ``type_`` are stored; all the operation's events."""
    deadline = time.monotonic() + limit
    while True:
        events = (await get(api, op, events="true"))["events"]
        if sum(e["type"] == type_ for e in events) >= count:
            return events
        assert time.monotonic() < deadline, f"fewer than {count} {type_} after {limit}s"
        await asyncio.sleep(0.02)


async def start(api: Any, request: str = "Tidy up the project", **body: Any) -> str:
    payload = {"request": request, "route": "plan", **body}
    r = await api.client.post("/v1/operations", json=payload, headers=api.auth())
    assert r.status_code == 202, r.text
    return r.json()["id"]


async def awaiting(api: Any, request: str = "Tidy up the project") -> tuple[str, dict]:
    op = await start(api, request, approve_plan=True)
    return op, await wait_for(api, op, "awaiting_approval", *TERMINAL)


async def decide(api: Any, op: str, owner: str = "alice", **decision: Any) -> Any:
    return await api.client.post(
        f"/v1/operations/{op}/plan", json=decision, headers=api.auth(owner)
    )


def of_type(events: list[dict], type_: str) -> list[dict]:
    return [e for e in events if e["type"] == type_]


def started_tasks(events: list[dict]) -> list[int]:
    return [e["payload"]["sequence"] for e in of_type(events, "task.started")]


# -- plan approval -------------------------------------------------------------------------


async def test_plan_waits_for_approval_with_its_tasks(api_factory, tmp_path) -> None:
    async with api_factory(models=review_script(tmp_path)) as api:
        op, body = await awaiting(api)
        assert body["status"] == "awaiting_approval"
        assert [t["description"] for t in body["tasks"]] == ORIGINAL
        assert {t["status"] for t in body["tasks"]} == {"pending"}
        events = (await get(api, op, events="true"))["events"]
        [waiting] = of_type(events, "plan.awaiting_approval")
        assert waiting["payload"]["round"] == 1
        assert [t["description"] for t in waiting["payload"]["tasks"]] == ORIGINAL
        assert not of_type(events, "task.started")


async def test_accept_runs_the_plan(api_factory, tmp_path) -> None:
    async with api_factory(models=review_script(tmp_path)) as api:
        op, _ = await awaiting(api)
        r = await decide(api, op, action="accept")
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "running"
        body = await wait_for(api, op, *TERMINAL)
        assert body["status"] == "completed", body["error"]
        assert [t["description"] for t in body["tasks"]] == ORIGINAL
        assert {t["status"] for t in body["tasks"]} == {"completed"}
        assert body["answer"]
        events = (await get(api, op, events="true"))["events"]
        [reviewed] = of_type(events, "plan.reviewed")
        assert reviewed["payload"]["action"] == "accept"
        assert sorted(started_tasks(events)) == [1, 2, 3]


async def test_edit_runs_exactly_the_edited_tasks(api_factory, tmp_path) -> None:
    async with api_factory(models=review_script(tmp_path)) as api:
        op, _ = await awaiting(api)
        tasks = [
            {"description": "Read the README"},
            {"description": "Summarize the README", "depends_on": [1], "active_form": "Summing"},
        ]
        r = await decide(api, op, action="edit", tasks=tasks)
        assert r.status_code == 202, r.text
        body = await wait_for(api, op, *TERMINAL)
        assert body["status"] == "completed", body["error"]
        assert [t["description"] for t in body["tasks"]] == [
            "Read the README",
            "Summarize the README",
        ]
        assert [t["depends_on"] for t in body["tasks"]] == [[], [1]]
        assert body["tasks"][1]["active_form"] == "Summing"
        assert all(t["history"] == [] and t["version"] == 1 for t in body["tasks"])
        assert "Read the README" in body["tasks"][0]["result"]
        assert "Summarize the README" in body["plan_text"]
        assert "Survey the code" not in body["plan_text"]
        events = (await get(api, op, events="true"))["events"]
        assert started_tasks(events) == [1, 2]  # 2 waited for 1
        [reviewed] = of_type(events, "plan.reviewed")
        assert reviewed["payload"]["action"] == "edit"
        assert len(reviewed["payload"]["tasks"]) == 2


async def test_replan_sends_the_feedback_to_the_planner(api_factory, tmp_path) -> None:
    async with api_factory(models=review_script(tmp_path)) as api:
        op, _ = await awaiting(api)
        r = await decide(api, op, action="replan", feedback=FEEDBACK)
        assert r.status_code == 202, r.text
        events = await wait_events(api, op, "plan.awaiting_approval", 2)
        body = await get(api, op)
        assert body["status"] == "awaiting_approval"
        assert [t["description"] for t in body["tasks"]] == REVISED  # the feedback matched
        second = of_type(events, "plan.awaiting_approval")[1]["payload"]
        assert second["round"] == 2
        assert [t["description"] for t in second["tasks"]] == REVISED
        [reviewed] = of_type(events, "plan.reviewed")
        assert reviewed["payload"] == {"round": 1, "action": "replan", "feedback": FEEDBACK}

        r = await decide(api, op, action="accept")
        assert r.status_code == 202, r.text
        body = await wait_for(api, op, *TERMINAL)
        assert body["status"] == "completed", body["error"]
        assert [t["description"] for t in body["tasks"]] == REVISED
        events = (await get(api, op, events="true"))["events"]
        assert sorted(started_tasks(events)) == [1, 2]
        assert [e["payload"]["round"] for e in of_type(events, "plan.reviewed")] == [1, 2]


async def test_reject_ends_the_operation(api_factory, tmp_path) -> None:
    async with api_factory(models=review_script(tmp_path)) as api:
        op, _ = await awaiting(api)
        r = await decide(api, op, action="reject", reason="too broad")
        assert r.status_code == 202, r.text
        assert r.json()["status"] == "rejected"
        body = await get(api, op, events="true")
        assert body["status"] == "rejected"
        assert "too broad" in body["error"]
        assert body["events"][-1]["type"] == "operation.rejected"
        await asyncio.sleep(0.3)  # the resumed graph ends without running anything
        body = await get(api, op, events="true")
        assert body["status"] == "rejected"
        assert not of_type(body["events"], "task.started")
        assert len([e for e in body["events"] if e["type"].startswith("operation.")]) == 2
        again = await decide(api, op, action="accept")
        assert again.status_code == 409


# -- plan decision errors ------------------------------------------------------------------


async def test_decision_needs_an_operation_awaiting_approval(api) -> None:
    op = await start(api)
    body = await wait_for(api, op, *TERMINAL)
    assert body["status"] == "completed"
    r = await decide(api, op, action="accept")
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "operation_state"
    assert (await get(api, op)) == body


@pytest.mark.parametrize(
    ("decision", "path"),
    [
        (
            {
                "action": "edit",
                "tasks": [{"description": "a", "depends_on": [2]}, {"description": "b"}],
            },
            "body.tasks.0.depends_on",
        ),
        (
            {
                "action": "edit",
                "tasks": [{"description": "a"}, {"description": "b", "depends_on": [2]}],
            },
            "body.tasks.1.depends_on",
        ),
        (
            {"action": "edit", "tasks": [{"description": "a", "skill": "no-such-skill"}]},
            "body.tasks.0.skill",
        ),
        ({"action": "edit", "tasks": []}, "body.tasks"),
        ({"action": "replan"}, "body.feedback"),
        ({"action": "approve"}, "body|body.action"),  # the tag: no field path yet
        ({"action": "accept", "tasks": []}, "body.tasks"),
    ],
)
async def test_invalid_decisions_change_nothing(api_factory, tmp_path, decision, path) -> None:
    async with api_factory(models=review_script(tmp_path)) as api:
        op, before = await awaiting(api)
        r = await decide(api, op, **decision)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "invalid_request"
        assert set(path.split("|")) & {d["path"] for d in error["details"]}, error
        after = await get(api, op, events="true")
        assert after["status"] == "awaiting_approval"
        assert after["tasks"] == before["tasks"]
        assert not of_type(after["events"], "plan.reviewed")
        r = await decide(api, op, action="accept")  # still waiting for a valid decision
        assert r.status_code == 202, r.text
        assert (await wait_for(api, op, *TERMINAL))["status"] == "completed"


async def test_another_owner_cannot_decide(api_factory, tmp_path) -> None:
    async with api_factory(models=review_script(tmp_path)) as api:
        op, before = await awaiting(api)
        r = await decide(api, op, owner="bob", action="reject")
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "operation_not_found"
        r = await decide(api, "no-such-operation", action="accept")
        assert r.status_code == 404
        after = await get(api, op)
        assert after["status"] == "awaiting_approval"
        assert after["tasks"] == before["tasks"]


# -- task re-runs --------------------------------------------------------------------------


async def rerun(api: Any, op: str, task: Any, owner: str = "alice", **body: Any) -> Any:
    return await api.client.post(
        f"/v1/operations/{op}/tasks/{task}/rerun", json=body or None, headers=api.auth(owner)
    )


async def test_rerun_runs_the_task_and_its_dependents(api_factory, tmp_path) -> None:
    async with api_factory(models=rerun_script(tmp_path)) as api:
        op = await start(api, "Report on the metrics")
        first = await wait_for(api, op, *TERMINAL)
        assert first["status"] == "completed", first["error"]
        assert first["answer"] == "answer one"
        r = await rerun(
            api, op, 1, description="Collect the public metrics", instructions=INSTRUCTION
        )
        assert r.status_code == 202, r.text
        assert r.json() | {"links": None} == {
            "id": op,
            "status": "running",
            "links": None,
            "task": 1,
            "version": 2,
            "dependents": [2],
        }
        events = await wait_events(api, op, "operation.completed", 2)
        body = await get(api, op)
        assert body["status"] == "completed", body["error"]
        assert body["answer"] == "answer two"
        t1, t2, t3 = body["tasks"]
        assert (t1["version"], t2["version"], t3["version"]) == (2, 2, 1)
        assert t1["description"] == "Collect the public metrics"
        assert t1["instructions"] == INSTRUCTION
        assert t1["result"] == "metrics v2 (public only)"  # the instructions reached the prompt
        assert [h["result"] for h in t1["history"]] == ["metrics v1"]
        assert t1["history"][0]["description"] == "Collect the metrics"
        assert [h["version"] for h in t2["history"]] == [1]
        assert t2["status"] == "completed"
        assert t3 == first["tasks"][2]  # same result, same completed_at, no history
        assert sorted(started_tasks(events)) == [1, 1, 2, 2, 3]
        [rerun_event] = of_type(events, "task.rerun")
        assert rerun_event["payload"]["sequence"] == 1
        assert rerun_event["payload"]["dependents"] == [2]
        types = [e["type"] for e in events]
        assert types.index("task.rerun") > types.index("operation.completed")
        assert types[-1] == "operation.completed"
        calls = {m["node"]: m["calls"] for m in body["usage_by_model"]}
        assert calls["execute_task"] == 5
        assert calls["synthesize"] == 2


async def test_rerun_of_a_task_without_dependents_keeps_the_others(api_factory, tmp_path) -> None:
    async with api_factory() as api:
        op = await start(api, "Compare two libraries")
        first = await wait_for(api, op, *TERMINAL)
        assert first["status"] == "completed"
        # fake:default plans 3 tasks, the last depending on the first two.
        r = await rerun(api, op, 3)
        assert r.status_code == 202, r.text
        assert (r.json()["version"], r.json()["dependents"]) == (2, [])
        await wait_events(api, op, "operation.completed", 2)
        body = await get(api, op)
        assert body["status"] == "completed"
        assert [t["version"] for t in body["tasks"]] == [1, 1, 2]
        assert body["tasks"][:2] == first["tasks"][:2]
        assert body["tasks"][2]["description"] == first["tasks"][2]["description"]


async def test_rerun_errors_change_nothing(api_factory, tmp_path) -> None:
    slow = write_script(
        tmp_path, [{"node": "execute_task", "reply": {"text": "slow", "delay": 0.5}}]
    )
    async with api_factory(models=slow) as api:
        op = await start(api, "Compare two libraries")
        await wait_events(api, op, "task.started", 1)
        r = await rerun(api, op, 1)
        assert r.status_code == 409
        assert r.json()["error"]["code"] == "operation_state"
        done = await wait_for(api, op, *TERMINAL)
        assert done["status"] == "completed"

        r = await rerun(api, op, 9)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "task_not_found")
        r = await rerun(api, op, 0)
        assert r.status_code == 422
        assert r.json()["error"]["details"][0]["path"] == "path.task_id"
        r = await rerun(api, op, 1, description="")
        assert r.status_code == 422
        assert r.json()["error"]["details"][0]["path"] == "body.description"
        r = await rerun(api, op, 1, note="x")
        assert r.status_code == 422
        r = await rerun(api, op, 1, owner="bob")
        assert (r.status_code, r.json()["error"]["code"]) == (404, "operation_not_found")
        assert (await get(api, op)) == done


async def test_rerun_needs_an_ended_operation_with_a_plan(api_factory, tmp_path) -> None:
    async with api_factory(models=review_script(tmp_path)) as api:
        op, _ = await awaiting(api)
        r = await rerun(api, op, 1)
        assert (r.status_code, r.json()["error"]["code"]) == (409, "operation_state")
        await decide(api, op, action="reject")
        r = await rerun(api, op, 1)
        assert r.status_code == 409
        fast = await start(api, "What is a monad?", route="fast")
        assert (await wait_for(api, fast, *TERMINAL))["status"] == "completed"
        r = await rerun(api, fast, 1)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "task_not_found")
