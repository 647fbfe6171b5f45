"""Executors and skills: activation by the executor, token budgets, files shared by tasks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crewchief import FakeChatModel, FakeScript
from crewchief.config import Settings
from crewchief.skills.registry import SkillRegistry
from tests.conftest import make_settings, plan_reply, run_planned

CODE = "def area(w, h):\n    return w * h\n"


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "shapes.py").write_text(CODE, encoding="utf-8")
    (root / "other.py").write_text(CODE, encoding="utf-8")
    return root


def _model(plan: dict[str, Any], *executor: dict[str, Any]) -> FakeChatModel:
    rules = [{"node": "plan", "reply": plan}]
    rules += [{"node": "execute_task", **rule} for rule in executor]
    rules.append({"node": "synthesize", "reply": "Done."})
    return FakeChatModel(script=FakeScript(rules=rules, fallback="error"))


async def run(settings: Settings, model: FakeChatModel, workspace: Path | None) -> Any:
    return await run_planned(settings, model, "Review the shapes module", workspace)


async def test_an_executor_can_activate_a_skill_which_then_restricts_it(
    settings: Settings, workspace: Path
) -> None:
    activate = {"name": "activate_skill", "args": {"name": "security-audit"}}
    write = {"name": "write_file", "args": {"path": "notes.md", "content": "x"}}
    model = _model(
        plan_reply("Check the area helper for risky input"),
        {"replies": [{"tool_calls": [activate]}, {"tool_calls": [write]}, "Findings: none"]},
    )
    op = await run(settings, model, workspace)
    assert op.status == "completed", op.error
    calls = [c for c in model.calls if c["node"] == "execute_task"]
    audit = SkillRegistry.load().meta("security-audit")
    assert "activate_skill" in calls[0]["tools"] and calls[0]["alias"] == "delegate"
    # After activation: the skill's tools only, on its preferred model, with its instructions.
    assert set(calls[1]["tools"]) == set(audit.allowed_tools)
    assert calls[1]["alias"] == "orchestrator"
    assert "SECURITY AUDIT REPORT" in calls[1]["messages"][-1].content
    events = [e.payload | {"type": e.type} for e in op.events]
    (activated,) = [e for e in events if e["type"] == "task.skill_activated"]
    assert (activated["skill"], activated["by"], activated["model_alias"]) == (
        "security-audit",
        "executor",
        "orchestrator",
    )
    refused = [e for e in events if e["type"] == "task.tool_called" and e["refused"]]
    assert [(e["tool"], e["skill"]) for e in refused] == [("write_file", "security-audit")]
    assert not (workspace / "notes.md").exists()
    assert op.tasks[0].skill == "security-audit", "the task row records the executor's choice"


async def test_the_token_budget_ends_the_loop_with_a_report(
    tmp_path: Path, workspace: Path
) -> None:
    settings = make_settings(tmp_path / "home", max_task_tokens=100)
    look = {
        "tool_calls": [{"name": "list_files", "args": {}}],
        "usage": {"input": 80, "output": 30},
    }
    model = _model(
        plan_reply("Look around the project"),
        {"match": "token budget", "reply": "Listed the files; nothing else done."},
        {"replies": [look]},
    )
    op = await run(settings, model, workspace)
    (task,) = op.tasks
    assert task.status == "completed"
    assert task.result == "Listed the files; nothing else done."
    calls = [c for c in model.calls if c["node"] == "execute_task"]
    assert len(calls) == 2 and calls[-1]["tools"] == []
    assert "(110 of 100 tokens)" in calls[-1]["messages"][-1].content


async def test_tasks_naming_the_same_file_do_not_run_at_once(
    settings: Settings, workspace: Path
) -> None:
    plan = plan_reply(
        "Add a docstring to area in shapes.py",
        "Rename area to rect_area in shapes.py",
        "Add a docstring to other.py",
    )
    slow = {"delay": 0.3, "text": "done"}
    model = _model(plan, {"replies": [slow]})
    op = await run(settings, model, workspace)
    assert op.status == "completed", op.error
    first, second, third = op.tasks
    assert second.started_at >= first.completed_at, "both change shapes.py: one after the other"
    assert third.started_at < first.completed_at, "other.py is free: it runs alongside"


async def test_a_skill_the_task_cannot_use_is_refused_without_failing_the_task(
    settings: Settings, workspace: Path, tmp_path: Path
) -> None:
    user = tmp_path / "skills" / "pairing"
    user.mkdir(parents=True)
    (user / "SKILL.md").write_text(
        "---\nname: pairing\ndescription: Review with the results of earlier tasks.\n"
        "requires_context: [dependencies]\n---\nTask: {task_description}\n",
        encoding="utf-8",
    )
    settings = make_settings(tmp_path / "home", skill_dirs=[str(tmp_path / "skills")])
    activate = {"name": "activate_skill", "args": {"name": "pairing"}}
    model = _model(plan_reply("Look around"), {"replies": [{"tool_calls": [activate]}, "Looked."]})
    op = await run(settings, model, workspace)
    (task,) = op.tasks
    assert task.status == "completed" and task.result == "Looked."
    (call,) = [e.payload for e in op.events if e.type == "task.tool_called"]
    assert call["tool"] == "activate_skill" and not call["ok"]
    assert "requires dependencies" in call["output"]
