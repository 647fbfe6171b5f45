"""A task's details on the page: its model, tokens, cost, tool calls and the diff of the
file it wrote, for an operation started from the page on a workspace."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.conftest import plan_reply
from tests.dashboard.conftest import Dashboard

pytestmark = pytest.mark.browser

OLD = 'def greet(name):\n    return "Hello " + name\n'
NEW = 'def greet(name):\n    return f"Hello, {name}!"\n'


def test_a_task_shows_its_tool_calls_the_diff_it_made_and_what_it_cost(
    dashboard_factory: Callable[..., Dashboard], tmp_path: Path
) -> None:
    root = tmp_path / "work"
    (root / "app").mkdir(parents=True)
    (root / "app" / "greet.py").write_text(OLD)
    rules = [
        {"node": "plan", "reply": plan_reply("Punctuate the greeting", summary="One edit")},
        {
            "node": "execute_task",
            "replies": [
                {"tool_calls": [{"name": "write_file", "args": {"path": "greet.py", "content": NEW}}]},
                {"text": "The greeting is punctuated.", "usage": {"input": 900, "output": 40}, "cost": 0.0125},
            ],
        },
        {"node": "synthesize", "reply": "Done: greet() now punctuates."},
    ]  # fmt: skip
    dash = dashboard_factory(rules, args=["--workspace-root", str(root)])
    dash.open()
    page = dash.page
    page.locator("#new-workspace").fill(str(root / "app"))
    op_id = dash.start_from_page("Punctuate the greeting", route="plan")
    expect(page.locator("[data-testid=op-status]")).to_have_text("completed")

    task = page.locator("[data-testid=task-1]")
    expect(task).to_contain_text("1 tool call")
    expect(task.locator(".tools li")).to_have_count(1)
    expect(task.locator(".tools li")).to_contain_text("write_file")
    task.get_by_text("Diff", exact=True).click()
    diff = task.locator("pre.diff")
    expect(diff.locator(".del")).to_have_text(['-    return "Hello " + name'])
    expect(diff.locator(".add")).to_have_text(['+    return f"Hello, {name}!"'])
    expect(diff).to_contain_text("--- a/greet.py")
    # What the model said it cost, and its tokens, as the ledger has them.
    expect(task).to_contain_text("cost: $0.0125")
    expect(task).to_contain_text(re.compile(r"tokens: [\d,]+ in"))
    expect(task).to_contain_text("The greeting is punctuated.")
    stored = dash.operation(op_id)
    assert stored["tasks"][0]["model"] and stored["tasks"][0]["model"] in task.inner_text()
    assert (root / "app" / "greet.py").read_text() == NEW
