"""Operations use hybrid code search: the planner's search_codebase and the executors'
search_code, restricted by skills like every other tool."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crewchief import Crewchief, FakeChatModel, FakeScript
from crewchief.config import Settings
from tests.conftest import make_settings, plan_reply

PAYMENTS = '''
def refund_order(order, amount):
    """Give the customer money back, at most what they paid."""
    return min(amount, order.paid)


def charge_card(card, amount):
    return card.debit(amount)
'''


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "payments.py").write_text(PAYMENTS, encoding="utf-8")
    (root / "README.md").write_text("# Shop\n\nA small shop.\n", encoding="utf-8")
    return root


async def _run(settings: Settings, rules: list[dict[str, Any]], workspace: Path) -> Any:
    rules = [*rules, {"node": "synthesize", "reply": "Done."}]
    model = FakeChatModel(script=FakeScript(rules=rules, fallback="error"))
    async with Crewchief(settings, models={"orchestrator": model, "delegate": model}) as cc:
        result = await cc.run("Fix refunds", workspace=workspace, route="plan")
        return model, await cc.get(result.id, events=True)


async def test_the_planner_searches_the_codebase_by_meaning(
    settings: Settings, workspace: Path
) -> None:
    search = {
        "name": "search_codebase",
        "args": {"query": "give money back to a customer", "question": "Where?"},
    }
    rules = [
        {
            "node": "plan",
            "alias": "orchestrator",
            "replies": [{"tool_calls": [search]}, "READY", plan_reply("Fix refund_order")],
        },
        {"node": "plan", "alias": "delegate", "reply": "payments.py:2 refund_order refunds."},
        {"node": "execute_task", "reply": "Fixed."},
    ]
    model, op = await _run(settings, rules, workspace)
    assert op.status == "completed", op.error
    (delegate,) = [c for c in model.calls if c["node"] == "plan" and c["alias"] == "delegate"]
    # The delegate was handed the hybrid search's hits, best first, with why they matched.
    assert "search_code" in delegate["prompt"]
    assert "1. payments.py:2-4 refund_order  (keywords #1: " in delegate["prompt"]
    (event,) = [e.payload for e in op.events if e.type == "plan.tool_called"]
    assert (event["tool"], event["ok"]) == ("search_codebase", True)


async def test_executors_search_the_code_unless_their_skill_leaves_it_out(
    tmp_path: Path, workspace: Path
) -> None:
    narrow = tmp_path / "skills" / "narrow"
    narrow.mkdir(parents=True)
    (narrow / "SKILL.md").write_text(
        "---\nname: narrow\ndescription: Reads files it is told about.\n"
        "allowed-tools: read_file\n---\nTask: {task_description}\n",
        encoding="utf-8",
    )
    settings = make_settings(tmp_path / "home", skill_dirs=[str(tmp_path / "skills")])
    settings.max_plan_tool_calls = 0
    find = {"name": "search_code", "args": {"query": "charge a credit card", "k": 2}}
    plan = {
        "plan": {
            "summary": "look",
            "tasks": [
                {
                    "id": 1,
                    "description": "Find card charging",
                    "active_form": "Finding",
                    "depends_on": [],
                },
                {
                    "id": 2,
                    "description": "Narrow look at cards",
                    "active_form": "Looking",
                    "skill": "narrow",
                    "depends_on": [],
                },
            ],
        }
    }
    rules = [
        {"node": "plan", "alias": "orchestrator", "reply": plan},
        {"node": "execute_task", "match": "Find card", "replies": [{"tool_calls": [find]}, "ok"]},
        {"node": "execute_task", "match": "Narrow", "replies": [{"tool_calls": [find]}, "ok"]},
    ]
    model, op = await _run(settings, rules, workspace)
    assert op.status == "completed", op.error
    calls = {e.payload["sequence"]: e.payload for e in op.events if e.type == "task.tool_called"}
    assert calls[1]["tool"] == "search_code" and calls[1]["ok"]
    assert calls[1]["output"].startswith("1. payments.py:7-8 charge_card")
    assert calls[2]["refused"] and "not allowed" in calls[2]["output"]
    offered: dict[str, set[str]] = {}
    for call in model.calls:
        if call["node"] == "execute_task" and call["tools"]:
            key = "narrow" if "Narrow look" in call["prompt"] else "default"
            offered.setdefault(key, set()).update(call["tools"])
    assert "search_code" in offered["default"]
    assert "search_code" not in offered["narrow"] and "read_file" in offered["narrow"]
