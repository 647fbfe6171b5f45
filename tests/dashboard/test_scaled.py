"""The dashboard in scaled mode: two API instances and a worker on PostgreSQL and Redis.

The page is served by one instance while the operation runs on a worker process; a second
page, on the other instance, follows the same operation. Both see every event, live, once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.api.conftest import LiveServer
from tests.dashboard.conftest import Dashboard, four_task_rules

pytestmark = [pytest.mark.browser, pytest.mark.postgres, pytest.mark.slow]


def _seqs(page: Any) -> list[int]:
    return [
        int(s)
        for s in page.locator("[data-testid=event-log] li").evaluate_all(
            "items => items.map((li) => li.dataset.seq)"
        )
    ]


def test_two_instances_and_a_worker_show_one_operation_live(
    # The database first: set up before the servers and pages, dropped after them.
    postgres_url: str,
    redis_url: str,
    redis_prefix: str,
    live_server_factory: Callable[..., LiveServer],
    dashboard_factory: Callable[..., Dashboard],
) -> None:
    scaled = {
        "CREWCHIEF_DATABASE_URL": postgres_url,
        "CREWCHIEF_REDIS_URL": redis_url,
        "CREWCHIEF_REDIS_PREFIX": redis_prefix,
        "CREWCHIEF_EXECUTOR": "queue",
    }
    # Instance A runs one worker process; instance B only serves the API.
    dash = dashboard_factory(four_task_rules(), env=scaled, args=["--workers", "1"])
    other = live_server_factory(
        env={**scaled, "CREWCHIEF_MODEL": dash.server.env["CREWCHIEF_MODEL"]}, args=["--no-auth"]
    )
    dash.open()
    op_id = dash.start_from_page("Do the four steps", route="plan")

    second = dash.context.new_page()
    second.goto(f"{other.url}/#/operations/{op_id}")
    for page in (dash.page, second):
        node = page.locator("svg[data-testid=plan-graph] g.node[data-task='3']")
        expect(node).to_have_attribute("data-status", "in_progress")
    for page in (dash.page, second):
        expect(page.locator("[data-testid=op-status]")).to_have_text("completed")
        expect(page.locator("[data-testid=answer]")).to_contain_text("All four steps are done.")
        for seq in (1, 2, 3, 4):
            node = page.locator(f"svg[data-testid=plan-graph] g.node[data-task='{seq}']")
            expect(node).to_have_attribute("data-status", "completed")

    stored = [e["seq"] for e in dash.operation(op_id, events=True)["events"]]
    assert stored == list(range(1, len(stored) + 1))
    for page in (dash.page, second):
        expect(page.locator("[data-testid=event-log] li")).to_have_count(len(stored))
        assert _seqs(page) == stored
    # B's list shows it too: the operations of every instance are in one database.
    second.goto(f"{other.url}/#/operations")
    row = second.locator(f"tr[data-op-id='{op_id}']")
    expect(row.locator("[data-field=status]")).to_have_text("completed")
