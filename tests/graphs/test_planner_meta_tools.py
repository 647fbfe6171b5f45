"""The planner's meta-tools: bounded, answered by the delegate, never a raw file for the planner."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crewchief import FakeChatModel, FakeScript
from crewchief.config import Settings
from crewchief.tools.meta import META_TOOL_NAMES
from tests.conftest import make_settings, plan_reply, run_planned

SECRET_LINE = "API_TIMEOUT = 30  # seconds before a request gives up"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "config.py").write_text(f"{SECRET_LINE}\nRETRIES = 3\n", encoding="utf-8")
    return root


def _model(*rules: dict[str, Any]) -> FakeChatModel:
    return FakeChatModel(
        script=FakeScript(
            rules=[
                *rules,
                {"node": "execute_task", "reply": "ok"},
                {"node": "synthesize", "reply": "Done."},
            ],
            fallback="error",
        )
    )


def planner_calls(model: FakeChatModel) -> list[dict[str, Any]]:
    return [c for c in model.calls if c["node"] == "plan" and c["alias"] == "orchestrator"]


async def run(settings: Settings, model: FakeChatModel, workspace: Path | None) -> Any:
    return await run_planned(settings, model, "Make the timeout configurable", workspace)


async def test_read_project_file_returns_the_delegates_answer_not_the_file(
    settings: Settings, workspace: Path
) -> None:
    read = {"name": "read_project_file", "args": {"path": "config.py", "question": "Timeout?"}}
    model = _model(
        {
            "node": "plan",
            "alias": "orchestrator",
            "replies": [{"tool_calls": [read]}, plan_reply("Edit config.py")],
        },
        {"node": "plan", "alias": "delegate", "reply": "config.py:1 sets API_TIMEOUT to 30 s."},
    )
    op = await run(settings, model, workspace)
    assert op.status == "completed", op.error
    delegate = [c for c in model.calls if c["node"] == "plan" and c["alias"] == "delegate"]
    assert len(delegate) == 1 and SECRET_LINE in delegate[0]["prompt"], "the delegate read it"
    assert "Timeout?" in delegate[0]["prompt"]
    # The delegate may look further, with read-only tools only.
    assert "write_file" not in delegate[0]["tools"] and "read_file" in delegate[0]["tools"]
    final = planner_calls(model)[-1]
    assert "config.py:1 sets API_TIMEOUT to 30 s." in final["prompt"]
    assert SECRET_LINE not in final["prompt"], "the planner never pays for the raw file"
    assert sorted(planner_calls(model)[0]["tools"]) == sorted(META_TOOL_NAMES)


async def test_planner_tool_calls_are_bounded_then_the_plan_is_asked_for(
    tmp_path: Path, workspace: Path
) -> None:
    settings = make_settings(tmp_path / "home", max_plan_tool_calls=2)
    listing = [
        {"tool_calls": [{"name": "list_project_files", "args": {"pattern": f"*.{e}"}}]}
        for e in ("py", "md", "txt")
    ]
    model = _model(
        {
            "node": "plan",
            "alias": "orchestrator",
            "match": "What the workspace looked like",
            "reply": plan_reply("Edit config.py"),
        },
        {"node": "plan", "alias": "orchestrator", "replies": listing},
        {"node": "plan", "alias": "delegate", "reply": "Found config.py."},
    )
    op = await run(settings, model, workspace)
    assert op.status == "completed", op.error
    calls = planner_calls(model)
    # Two exploring calls used the budget; the third asked for the plan, without tools.
    assert [bool(c["tools"]) for c in calls] == [True, True, False]
    assert (
        "- list_project_files" in calls[-1]["prompt"] and "Found config.py." in calls[-1]["prompt"]
    )
    meta = [e.payload for e in op.events if e.type == "plan.tool_called"]
    assert [(m["step"], m["tool"], m["ok"]) for m in meta] == [
        (1, "list_project_files", True),
        (2, "list_project_files", True),
    ]
    assert "plan.invalid" not in [e.type for e in op.events]


async def test_a_refused_meta_tool_call_is_told_to_the_planner_without_a_model_call(
    settings: Settings, workspace: Path
) -> None:
    escape = {"name": "get_file_summary", "args": {"path": "../../etc/passwd"}}
    model = _model(
        {
            "node": "plan",
            "alias": "orchestrator",
            "replies": [{"tool_calls": [escape]}, plan_reply("Edit config.py")],
        },
    )
    op = await run(settings, model, workspace)
    assert op.status == "completed", op.error
    assert not [c for c in model.calls if c["alias"] == "delegate" and c["node"] == "plan"]
    (meta,) = [e.payload for e in op.events if e.type == "plan.tool_called"]
    assert meta["ok"] is False and "outside the workspace" in meta["answer"]
    tool_message = planner_calls(model)[1]["messages"][-1]
    assert (
        tool_message.content.startswith("error:")
        and "outside the workspace" in tool_message.content
    )


async def test_without_a_workspace_the_planner_gets_no_tools(settings: Settings) -> None:
    model = _model({"node": "plan", "reply": plan_reply("Explain the plan")})
    op = await run(settings, model, None)
    assert op.status == "completed", op.error
    assert [c["tools"] for c in planner_calls(model)] == [[]]


async def test_an_unknown_skill_in_the_plan_is_sent_back_with_the_valid_names(
    settings: Settings, workspace: Path
) -> None:
    bad = {
        "summary": "s",
        "tasks": [
            {
                "id": 1,
                "description": "Edit config.py",
                "active_form": "Editing",
                "skill": "wizardry",
                "depends_on": [],
            }
        ],
    }
    good = plan_reply("Edit config.py")
    model = _model(
        {"node": "plan", "alias": "orchestrator", "replies": [{"plan": bad}, {"plan": bad}, good]}
    )
    op = await run(settings, model, workspace)
    assert op.status == "completed", op.error
    (invalid,) = [e.payload for e in op.events if e.type == "plan.invalid"]
    assert "unknown skill 'wizardry'" in invalid["error"] and "security-audit" in invalid["error"]


async def test_the_delegates_steps_are_bounded_and_it_uses_only_read_only_tools(
    tmp_path: Path, workspace: Path
) -> None:
    settings = make_settings(tmp_path / "home", meta_tool_steps=2)
    summary = {"name": "get_file_summary", "args": {"path": "config.py"}}
    read = {"tool_calls": [{"name": "read_file", "args": {"path": "config.py"}}]}
    model = _model(
        {
            "node": "plan",
            "alias": "orchestrator",
            "replies": [{"tool_calls": [summary]}, plan_reply("Edit config.py")],
        },
        {"node": "plan", "alias": "delegate", "replies": [read, "Two settings: timeout, retries."]},
    )
    op = await run(settings, model, workspace)
    assert op.status == "completed", op.error
    delegate = [c for c in model.calls if c["node"] == "plan" and c["alias"] == "delegate"]
    assert len(delegate) == 2
    assert delegate[0]["tools"] and not delegate[1]["tools"], "the last step is offered no tools"
    assert SECRET_LINE in delegate[1]["prompt"], "the delegate's read_file call ran"
    (meta,) = [e.payload for e in op.events if e.type == "plan.tool_called"]
    assert meta["answer"] == "Two settings: timeout, retries." and meta["tool_calls"] == 1
    ledger = {(m.node, m.alias, m.purpose): m.calls for m in op.usage_by_model}
    assert ledger[("plan", "delegate", "meta:get_file_summary")] == 2


async def test_the_delegates_answers_to_the_planner_are_priced_in_the_ledger(
    tmp_path: Path, workspace: Path
) -> None:
    settings = make_settings(
        tmp_path / "home", prices={"fake:default": {"input": 1.0, "output": 2.0}}
    )
    read = {"name": "read_project_file", "args": {"path": "config.py", "question": "Timeout?"}}
    usage = {"input": 100, "output": 10}
    model = _model(
        {
            "node": "plan",
            "alias": "orchestrator",
            "replies": [{"tool_calls": [read], "usage": usage}, plan_reply("Edit config.py")],
        },
        {"node": "plan", "alias": "delegate", "reply": {"text": "30 s.", "usage": usage}},
    )
    op = await run(settings, model, workspace)
    assert op.status == "completed", op.error
    (meta,) = [m for m in op.usage_by_model if m.purpose == "meta:read_project_file"]
    assert (meta.alias, meta.calls, meta.cost_usd) == ("delegate", 1, (100 + 2 * 10) / 1e6)
    assert op.cost_usd == round(sum(m.cost_usd for m in op.usage_by_model), 8) > meta.cost_usd
    assert op.unpriced_calls == 0


async def test_when_the_delegate_fails_the_planner_gets_the_tool_output_bounded(
    settings: Settings, workspace: Path
) -> None:
    listing = {"name": "list_project_files", "args": {}}
    model = _model(
        {
            "node": "plan",
            "alias": "orchestrator",
            "replies": [{"tool_calls": [listing]}, plan_reply("Edit config.py")],
        },
        {"node": "plan", "alias": "delegate", "reply": {"error": "delegate is down"}},
    )
    op = await run(settings, model, workspace)
    assert op.status == "completed", op.error
    (meta,) = [e.payload for e in op.events if e.type == "plan.tool_called"]
    assert meta["ok"] is True
    assert meta["answer"].startswith("(the delegate model could not answer")
    assert "config.py" in planner_calls(model)[-1]["messages"][-1].content
    failed = [m for m in op.usage_by_model if m.purpose == "meta:list_project_files"]
    assert failed and failed[0].failed_calls == 1


async def test_max_plan_tool_calls_zero_plans_without_looking(
    tmp_path: Path, workspace: Path
) -> None:
    settings = make_settings(tmp_path / "home", max_plan_tool_calls=0)
    model = _model({"node": "plan", "reply": plan_reply("Edit config.py")})
    op = await run(settings, model, workspace)
    assert op.status == "completed", op.error
    assert [c["tools"] for c in planner_calls(model)] == [[]]


async def test_a_long_exploration_is_summarized_to_fit_the_planners_window(
    tmp_path: Path, workspace: Path
) -> None:
    reads = [
        {
            "tool_calls": [
                {"name": "read_project_file", "args": {"path": "config.py", "question": q}}
            ]
        }
        for q in ("Timeout?", "Retries?", "Units?", "Defaults?")
    ]
    long_answer = "config.py sets API_TIMEOUT and RETRIES; " + "details of the settings " * 200
    model = _model(
        {
            "node": "plan",
            "alias": "orchestrator",
            "replies": [*reads, plan_reply("Edit config.py")],
        },
        {"node": "plan", "alias": "delegate", "reply": long_answer},
    )
    settings = make_settings(
        tmp_path / "home",
        max_output_tokens=300,
        context_keep_last=2,
        gateway={"context_tokens": 4000},  # the window of a model whose window is not known
    )
    op = await run(settings, model, workspace)
    assert op.status == "completed", op.error
    explore = [c for c in planner_calls(model) if c["tools"]]
    assert any(
        getattr(m, "content", "").startswith("[Summary of ") for m in explore[-1]["messages"]
    ), "the last exploration call went on from a summary of the earlier answers"
