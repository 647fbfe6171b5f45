"""A planned operation that uses skills and meta-tools, end to end on the fake provider.

The planner looks at the workspace through meta-tools (answered by the delegate),
then plans three tasks with three different skills. Each executor is offered
only its skill's tools, on the skill's preferred model; a call outside them is
refused and recorded; the writes land inside the workspace.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crewchief import Crewchief, FakeChatModel, FakeScript
from crewchief.config import Settings
from crewchief.skills.registry import SkillRegistry

CALC = "def add(a, b):\n    return a + b\n\n\ndef div(a, b):\n    return a / b\n"
README = "# calc\n"
README_NEW = "# calc\n\n`add(a, b)` adds two numbers; `div(a, b)` divides them.\n"
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"

PLAN = {
    "summary": "Document, test and audit calc",
    "tasks": [
        {
            "id": 1,
            "description": "Document add and div in README.md",
            "active_form": "Documenting calc",
            "skill": "documentation",
            "depends_on": [],
        },
        {
            "id": 2,
            "description": "Write unit tests for add in tests/test_calc.py",
            "active_form": "Writing tests",
            "skill": "testing",
            "depends_on": [],
        },
        {
            "id": 3,
            "description": "Audit the division helper for unsafe input handling",
            "active_form": "Auditing the division helper",
            "skill": "Security Audit",  # repaired to the registered name
            "depends_on": [],
        },
    ],
}


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "calc.py").write_text(CALC, encoding="utf-8")
    (root / "README.md").write_text(README, encoding="utf-8")
    return root


def _script() -> FakeScript:
    call = {"name": "list_project_files", "args": {"pattern": "**/*.py"}}
    search = {"name": "search_codebase", "args": {"query": "def div", "question": "Callers?"}}
    rules: list[dict[str, Any]] = [
        {
            "node": "plan",
            "alias": "orchestrator",
            "replies": [{"tool_calls": [call]}, {"tool_calls": [search]}, "READY", {"plan": PLAN}],
        },
        {"node": "plan", "alias": "delegate", "match": "list_project_files", "reply": "calc.py"},
        {"node": "plan", "alias": "delegate", "reply": "calc.py:5 defines div; no callers."},
        # Documentation: README.md is named, so the executor first gets it to rewrite.
        {
            "node": "execute_task",
            "match": "README",
            "reply": f"README.md\n```markdown\n{README_NEW}```\nDocumented.",
        },
        {
            "node": "execute_task",
            "match": "unit tests",
            "replies": [
                {
                    "tool_calls": [
                        {
                            "name": "write_file",
                            "args": {"path": "tests/test_calc.py", "content": TEST_CALC},
                        }
                    ]
                },
                "Added tests/test_calc.py.",
            ],
        },
        {
            "node": "execute_task",
            "match": "Audit",
            "replies": [
                # Not allowed by security-audit (read-only): refused, never run.
                {
                    "tool_calls": [
                        {"name": "write_file", "args": {"path": "calc.py", "content": "x"}}
                    ]
                },
                {"tool_calls": [{"name": "read_file", "args": {"path": "calc.py"}}]},
                "High: div(a, 0) raises ZeroDivisionError (calc.py:6).",
            ],
        },
        {"node": "synthesize", "reply": "Done."},
    ]
    return FakeScript(rules=rules, fallback="error")


async def test_skills_restrict_tools_and_meta_tools_are_paid_by_the_delegate(
    settings: Settings, workspace: Path
) -> None:
    model = FakeChatModel(script=_script())
    async with Crewchief(settings, models={"orchestrator": model, "delegate": model}) as cc:
        result = await cc.run("Document, test and audit calc", workspace=workspace, route="plan")
        stored = await cc.get(result.id, events=True)
    assert result.status == "completed", result.error
    assert [t.skill for t in result.tasks] == ["documentation", "testing", "security-audit"]
    assert all(t.status == "completed" for t in result.tasks)

    # Writes landed inside the workspace; the refused write did not.
    assert (workspace / "README.md").read_text() == README_NEW
    assert (workspace / "tests" / "test_calc.py").read_text() == TEST_CALC
    assert (workspace / "calc.py").read_text() == CALC

    # Each executor was offered exactly its skill's tools, on its skill's model.
    skills = SkillRegistry.load()
    offered: dict[str, set[str]] = {}
    aliases: dict[str, set[str]] = {}
    for call in model.calls:
        if call["node"] != "execute_task" or not call["tools"]:
            continue
        key = next(k for k in ("README", "unit tests", "Audit") if k in call["prompt"])
        offered.setdefault(key, set()).update(call["tools"])
        aliases.setdefault(key, set()).add(call["alias"])
    assert offered["unit tests"] == set(skills.meta("testing").allowed_tools)
    assert offered["Audit"] == set(skills.meta("security-audit").allowed_tools)
    assert "write_file" not in offered["Audit"]
    assert aliases == {"unit tests": {"delegate"}, "Audit": {"orchestrator"}}

    events = [e.payload | {"type": e.type} for e in stored.events]
    activated = [e for e in events if e["type"] == "task.skill_activated"]
    assert {(e["sequence"], e["skill"], e["by"]) for e in activated} == {
        (1, "documentation", "planner"),
        (2, "testing", "planner"),
        (3, "security-audit", "planner"),
    }
    refused = [e for e in events if e["type"] == "task.tool_called" and e["refused"]]
    assert [(e["sequence"], e["tool"], e["skill"]) for e in refused] == [
        (3, "write_file", "security-audit")
    ]
    assert "not allowed" in refused[0]["output"]

    # The planner's meta-tool calls: events, and delegate-model usage in the ledger.
    meta = [e for e in events if e["type"] == "plan.tool_called"]
    assert [(e["tool"], e["ok"]) for e in meta] == [
        ("list_project_files", True),
        ("search_codebase", True),
    ]
    assert meta[1]["answer"] == "calc.py:5 defines div; no callers."
    ledger = {(m.node, m.alias, m.purpose): m for m in stored.usage_by_model}
    assert ledger[("plan", "delegate", "meta:list_project_files")].calls == 1
    assert ledger[("plan", "delegate", "meta:search_codebase")].input > 0
    assert ledger[("plan", "orchestrator", None)].calls == 4  # 3 looking, 1 planning
    # The orchestrator saw the delegate's answer, never the file listing itself.
    planner_prompts = [
        c["prompt"] for c in model.calls if c["alias"] == "orchestrator" and c["node"] == "plan"
    ]
    assert "calc.py:5 defines div; no callers." in planner_prompts[-1]
    assert "return a / b" not in planner_prompts[-1]
