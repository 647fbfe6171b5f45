"""The operation graph end to end through the in-process runner, on each storage backend."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from crewchief import Crewchief, EventType, FakeChatModel, FakeScript
from crewchief.config import Settings
from tests.conftest import plan_reply, write_script


def overlap(a, b) -> bool:
    return a.started_at < b.completed_at and b.started_at < a.completed_at


async def test_fast_path_answers_with_one_low_effort_call(backend_settings: Settings) -> None:
    model = FakeChatModel(
        script=FakeScript(rules=[{"node": "fast_path", "reply": "A monad is a monoid."}])
    )
    async with Crewchief(backend_settings, models={"orchestrator": model}) as cc:
        result = await cc.run("What is a monad?")
    assert result.status == "completed"
    assert result.route == "fast"
    assert result.answer == "A monad is a monoid."
    assert result.tasks == []
    assert [c["node"] for c in model.calls] == ["fast_path"]
    assert result.usage.input > 0 and result.usage.output > 0


async def test_planned_operation_runs_independent_tasks_concurrently(
    backend_settings: Settings, tmp_path: Path
) -> None:
    spec = write_script(
        tmp_path,
        [
            {
                "node": "plan",
                "reply": plan_reply(
                    "Write the parser", "Write the printer", ("Wire them up", [1, 2])
                ),
            },
            {
                "node": "execute_task",
                "match": "Write the parser",
                "reply": {"text": "parser done", "delay": 0.3},
            },
            {
                "node": "execute_task",
                "match": "Write the printer",
                "reply": {"text": "printer done", "delay": 0.3},
            },
            {"node": "execute_task", "match": "Wire them up", "reply": "wired"},
            {"node": "synthesize", "reply": "All three done."},
        ],
        fallback="error",
    )
    async with Crewchief(backend_settings, models={"orchestrator": spec, "delegate": spec}) as cc:
        result = await cc.run("Refactor the formatter module", route="plan", workspace=tmp_path)
        stored = await cc.get(result.id, events=True)
    assert result.status == "completed", result.error
    assert result.answer == "All three done."
    parser, printer, wire = result.tasks
    assert [t.result for t in result.tasks] == ["parser done", "printer done", "wired"]
    assert overlap(parser, printer), "independent tasks should run at the same time"
    assert wire.started_at >= max(parser.completed_at, printer.completed_at), "dependency respected"
    assert all(t.usage.input > 0 and t.model for t in result.tasks)
    assert [e.seq for e in stored.events] == list(range(1, len(stored.events) + 1))
    types = [e.type for e in stored.events]
    assert types[0] == "operation.started" and types[-1] == "operation.completed"
    assert types.count("task.created") == 3 and types.count("task.completed") == 3
    calls = {(m.alias, m.node, m.purpose): m.calls for m in stored.usage_by_model}
    assert calls == {
        # With a workspace the planner first gets to look (one call), then plans (one call).
        ("orchestrator", "plan", None): 2,
        ("delegate", "execute_task", None): 3,
        ("orchestrator", "synthesize", None): 1,
    }
    assert stored.planning_usage.input > 0
    assert stored.plan_text.splitlines()[-1] == "3. Wire them up (after 1, 2)"


async def test_effort_is_high_for_planning_medium_for_synthesis_low_for_fast_path(
    settings: Settings,
) -> None:
    model = FakeChatModel()
    async with Crewchief(settings, models={"orchestrator": model}) as cc:
        await cc.run("Add a changelog and release notes", route="plan")
        await cc.run("What is 2+2?", route="fast")
    assert [(c["node"], c["effort"]) for c in model.calls] == [
        ("plan", "high"),
        ("synthesize", "medium"),
        ("fast_path", "low"),
    ]


async def test_failed_task_fails_its_dependents_and_the_operation(
    settings: Settings, tmp_path: Path
) -> None:
    spec = write_script(
        tmp_path,
        [
            {
                "node": "plan",
                "reply": plan_reply("Build", ("Test", [1]), ("Package", [2]), "Write docs"),
            },
            {
                "node": "execute_task",
                "match": "Task:\nBuild",
                "reply": {"error": "compiler exploded"},
            },
        ],
    )
    async with Crewchief(settings, models={"orchestrator": spec, "delegate": spec}) as cc:
        result = await cc.run("Ship the release", route="plan")
    assert result.status == "failed"
    statuses = {t.description: (t.status, t.error) for t in result.tasks}
    assert statuses["Build"][0] == "failed" and "compiler exploded" in statuses["Build"][1]
    assert statuses["Test"] == ("failed", "not run: it depends on task 1, which did not complete")
    assert statuses["Package"] == (
        "failed",
        "not run: it depends on task 2, which did not complete",
    )
    assert statuses["Write docs"][0] == "completed"
    assert "3 of 4 tasks did not complete" in result.error
    assert result.answer, "the user still gets a synthesis of what was done"


async def test_fast_path_failure_falls_back_to_planning(settings: Settings, tmp_path: Path) -> None:
    spec = write_script(tmp_path, [{"node": "fast_path", "reply": {"error": "provider down"}}])
    async with Crewchief(settings, models={"orchestrator": spec}) as cc:
        result = await cc.run("What is a closure?")
        events = (await cc.get(result.id, events=True)).events
    assert result.status == "completed"
    assert result.route == "plan"
    assert len(result.tasks) == 3
    failed = [e for e in events if e.type == "fast_path.failed"]
    assert failed and "provider down" in failed[0].payload["error"]


async def test_fast_path_writes_one_checkpoint_and_a_plan_one_per_step(
    settings: Settings,
) -> None:
    async with Crewchief(settings) as cc:
        counts = {}
        for route in ("fast", "plan"):
            result = await cc.run("What is a closure?", route=route)
            assert result.status == "completed"
            config = {"configurable": {"thread_id": result.id}}
            counts[route] = len([c async for c in cc.graph.checkpointer.alist(config)])
    assert counts["fast"] == 1, "a fast path is checkpointed once, when it ends"
    assert counts["plan"] > 5, counts  # detect, plan, review, dispatch, tasks, synthesis


async def test_fast_path_fallback_still_waits_for_plan_approval(
    settings: Settings, tmp_path: Path
) -> None:
    spec = write_script(tmp_path, [{"node": "fast_path", "reply": {"error": "provider down"}}])
    async with Crewchief(settings, models={"orchestrator": spec}) as cc:
        waiting = await cc.run("What is a closure?", route="fast", approve_plan=True)
        assert (waiting.status, waiting.route) == ("awaiting_approval", "plan")
        assert [t.status for t in waiting.tasks] == ["pending"] * 3
        done = await (await cc.review_plan(waiting.id, {"action": "accept"})).wait()
    assert done.status == "completed"
    assert [t.status for t in done.tasks] == ["completed"] * 3


async def test_unparseable_plan_is_retried_with_the_reason(
    settings: Settings, tmp_path: Path
) -> None:
    spec = write_script(
        tmp_path,
        [
            {
                "node": "plan",
                "replies": [
                    "I think we should refactor things.",
                    {
                        "text": "Here you go:\n```json\n"
                        + '{"steps": [{"title": "Run the build"}]}'
                        + "\n```"
                    },
                ],
            }
        ],
    )
    model_spec = spec
    async with Crewchief(settings, models={"orchestrator": model_spec}) as cc:
        result = await cc.run("Fix the build", route="plan")
        events = (await cc.get(result.id, events=True)).events
    assert result.status == "completed"
    assert [(t.description, t.active_form) for t in result.tasks] == [
        ("Run the build", "Running the build")
    ]
    invalid = [e.payload for e in events if e.type == "plan.invalid"]
    assert invalid == [
        {
            "attempt": 1,
            "error": 'no JSON object with a "tasks" list was found in the reply',
            "round": 1,
        }
    ]


async def test_plan_that_never_parses_fails_the_operation_clearly(
    settings: Settings, tmp_path: Path
) -> None:
    spec = write_script(tmp_path, [{"node": "plan", "reply": '{"tasks": []}'}])
    async with Crewchief(settings, models={"orchestrator": spec}) as cc:
        result = await cc.run("Migrate the database", route="plan")
    assert result.status == "failed"
    assert result.tasks == []
    assert "no usable plan after 3 attempt(s): the plan has no tasks" in result.error


# The running task's model call sleeps this long unless it is interrupted.
SLOW_TASK_S = 30
# A hang guard, not a speed target: cancelling normally returns in a fraction of a second. The
# guard stays well under SLOW_TASK_S, so a cancel that waited for the running task to finish
# instead of interrupting it still fails.
CANCEL_HANG_GUARD_S = 10


async def test_cancel_stops_a_running_task_promptly(settings: Settings, tmp_path: Path) -> None:
    assert CANCEL_HANG_GUARD_S < SLOW_TASK_S
    spec = write_script(
        tmp_path,
        [
            {"node": "plan", "reply": plan_reply("Slow thing", ("After", [1]))},
            {"node": "execute_task", "reply": {"text": "never", "delay": SLOW_TASK_S}},
        ],
    )
    async with Crewchief(settings, models={"orchestrator": spec, "delegate": spec}) as cc:
        handle = await cc.start("Do the slow thing", route="plan")
        async for event in handle.events():
            if event.type == EventType.TASK_STARTED:
                break
        try:
            result = await asyncio.wait_for(handle.cancel(), CANCEL_HANG_GUARD_S)
        except TimeoutError:
            pytest.fail(
                f"hang guard: cancel did not return within {CANCEL_HANG_GUARD_S} s: "
                f"it must interrupt the running task, not wait out its {SLOW_TASK_S} s"
            )
        events = (await cc.get(handle.id, events=True)).events
    assert result.status == "cancelled"
    assert [t.status for t in result.tasks] == ["cancelled", "cancelled"]
    assert events[-1].type == "operation.cancelled"


async def test_stream_yields_typed_events_with_token_deltas(settings: Settings) -> None:
    async with Crewchief(settings) as cc:
        events = [e async for e in cc.stream("What is a monad?")]
    persistent = [e for e in events if e.seq is not None]
    deltas = [e for e in events if e.type == EventType.MODEL_DELTA]
    assert persistent[0].type == EventType.OPERATION_STARTED
    assert events[-1].type == EventType.OPERATION_COMPLETED and events[-1].terminal
    assert "".join(d.payload["text"] for d in deltas) == events[-1].payload["answer"]
    assert [e.seq for e in persistent] == list(range(1, len(persistent) + 1))


async def test_forced_route_is_recorded(settings: Settings) -> None:
    async with Crewchief(settings) as cc:
        result = await cc.run("What is a monad?", route="plan")
    assert result.route == "plan" and result.route_forced
    assert len(result.tasks) == 3


async def test_parallelism_is_bounded(settings: Settings, tmp_path: Path) -> None:
    spec = write_script(
        tmp_path,
        [
            {"node": "plan", "reply": plan_reply("a", "b", "c", "d")},
            {"node": "execute_task", "reply": {"text": "ok", "delay": 0.15}},
        ],
    )
    bounded = settings.model_copy(update={"max_parallel_tasks": 2})
    async with Crewchief(bounded, models={"orchestrator": spec, "delegate": spec}) as cc:
        result = await cc.run("Do four things", route="plan")
    tasks = result.tasks
    for t in tasks:
        running = sum(1 for o in tasks if o.started_at <= t.started_at < o.completed_at)
        assert running <= 2
    assert result.status == "completed"


async def test_bad_input_is_refused_before_anything_is_recorded(
    chief: Crewchief, tmp_path: Path
) -> None:
    from crewchief import InvalidRequest

    with pytest.raises(InvalidRequest, match="request: expected a non-empty string"):
        await chief.run("   ")
    with pytest.raises(InvalidRequest, match="workspace: expected an existing directory"):
        await chief.run("hello", workspace=tmp_path / "missing")
    with pytest.raises(InvalidRequest, match="route: expected 'fast', 'plan' or null"):
        await chief.run("hello", route="slow")
    assert await chief.list() == []


async def test_operations_survive_a_new_instance(settings: Settings) -> None:
    async with Crewchief(settings) as cc:
        first = await cc.run("What is a monad?")
    async with Crewchief(settings) as cc:
        again = await cc.get(first.id)
        listed = await cc.list()
    assert again.answer == first.answer
    assert [o.id for o in listed] == [first.id]


async def test_graph_embeds_as_a_subgraph(settings: Settings) -> None:
    from typing import TypedDict

    from langgraph.graph import END, START, StateGraph

    from crewchief import build_operation_graph

    class Parent(TypedDict, total=False):
        request: str
        answer: str
        status: str

    parent = StateGraph(Parent)
    parent.add_node("crewchief", build_operation_graph(settings).compile())
    parent.add_edge(START, "crewchief")
    parent.add_edge("crewchief", END)
    out = await parent.compile().ainvoke({"request": "What is a monad?"})
    assert out["status"] == "completed"
    assert out["answer"] == "Answer to: What is a monad?"
    await asyncio.sleep(0)
