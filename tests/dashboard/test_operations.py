"""Operations in the browser, on a keyless server (``crewchief serve --no-auth``).

Most tests start a planned operation of four scripted tasks (Alpha and Beta in parallel,
Gamma after both, Delta after Gamma) from the page and check what a user sees: the plan
graph filling live, the timeline, the answer, plan review, reruns, cancelling, the event
stream surviving a network cut, and the list refreshing and filtering.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.conftest import plan_reply
from tests.dashboard.conftest import Dashboard, four_task_rules, task_rule

pytestmark = pytest.mark.browser

RUN = ["pending", "in_progress", "completed"]


def _box(page: Any, selector: str) -> dict[str, float]:
    box = page.locator(selector).bounding_box()
    assert box is not None, f"{selector} is not rendered"
    return box


def _is_subsequence(wanted: list[str], seen: list[str]) -> bool:
    it = iter(seen)
    return all(any(s == w for s in it) for w in wanted)


class TestKeylessServer:
    def test_a_started_operation_fills_its_plan_graph_live(
        self, dashboard_factory: Callable[..., Dashboard]
    ) -> None:
        dash = dashboard_factory(four_task_rules())
        dash.open()
        op_id = dash.start_from_page("Do the four steps", route="plan")
        page = dash.page
        expect(page.locator("[data-testid=stream-status]")).to_have_text("live")

        # Alpha and Beta run side by side while Gamma and Delta wait for them.
        expect(dash.node(1)).to_have_attribute("data-status", "in_progress")
        expect(dash.node(2)).to_have_attribute("data-status", "in_progress")
        expect(dash.node(3)).to_have_attribute("data-status", "pending")
        expect(dash.node(4)).to_have_attribute("data-status", "pending")
        expect(page.locator("[data-testid=op-status]")).to_have_text(re.compile("running"))
        expect(page.locator("[data-testid=cancel]")).to_have_text("Cancel")
        # Then Gamma runs, Delta still waits.
        expect(dash.node(3)).to_have_attribute("data-status", "in_progress")
        expect(dash.node(1)).to_have_attribute("data-status", "completed")
        expect(dash.node(2)).to_have_attribute("data-status", "completed")
        expect(dash.node(4)).to_have_attribute("data-status", "pending")
        expect(dash.node(4)).to_have_attribute("data-status", "in_progress")

        expect(page.locator("[data-testid=op-status]")).to_have_text("completed")
        expect(page.locator("[data-testid=answer]")).to_contain_text("All four steps are done.")
        expect(page.locator("[data-testid=stream-status]")).to_have_text("ended")
        expect(page.locator("[data-testid=route-decision]")).to_contain_text("plan")
        expect(page.locator("[data-testid=cancel]")).to_be_hidden()
        for seq, name in enumerate(("Alpha", "Beta", "Gamma", "Delta"), start=1):
            expect(dash.node(seq)).to_have_attribute("data-status", "completed")
            expect(page.locator(f"[data-testid=task-{seq}]")).to_contain_text(f"{name} result")
        # Every node went through the states in order (Alpha and Beta may start so soon
        # after the plan that their pending state is never painted).
        for seq in (1, 2, 3, 4):
            trail = dash.node_history(seq)
            assert trail[-2:] == ["in_progress", "completed"], (seq, trail)
            assert _is_subsequence(trail, RUN), (
                f"node {seq} went back to an earlier state on screen: {trail}"
            )
        assert dash.node_history(3)[0] == "pending" and dash.node_history(4)[0] == "pending"

        # The timeline: Alpha's and Beta's bars overlap, Gamma's starts after both end.
        bar = "[data-testid=timeline] [data-bar='{}']".format
        one, two, three, four = (_box(page, bar(seq)) for seq in (1, 2, 3, 4))
        assert one["x"] < two["x"] + two["width"] and two["x"] < one["x"] + one["width"], (one, two)
        assert three["x"] >= max(one["x"] + one["width"], two["x"] + two["width"]) - 2, (
            one,
            two,
            three,
        )
        assert four["x"] >= three["x"] + three["width"] - 2, (three, four)

        # The list shows it completed, with its route.
        page.get_by_role("navigation").get_by_role("link", name="Operations", exact=True).click()
        row = page.locator(f"tr[data-op-id='{op_id}']")
        expect(row.locator("[data-field=status]")).to_have_text(re.compile("completed"))
        expect(row.locator("[data-field=route]")).to_have_text(re.compile("plan"))

    def test_an_edited_plan_runs_as_edited(
        self, dashboard_factory: Callable[..., Dashboard]
    ) -> None:
        first = [
            task_rule("Beta revised", "Revised beta result", 0.3),
            task_rule("Epsilon", "Epsilon result", 0.3),
        ]
        dash = dashboard_factory(four_task_rules(delays=(0.3, 0.3, 0.3, 0.3), first=first))
        dash.open()
        op_id = dash.start_from_page("Do the four steps", route="plan", approve=True)
        page = dash.page
        review = page.locator("[data-testid=plan-review]")
        expect(review).to_be_visible()
        expect(page.locator("[data-testid=op-status]")).to_have_text(
            re.compile(r"awaiting.approval")
        )
        for name in ("Accept", "Edit tasks", "Replan", "Reject"):
            expect(review.get_by_role("button", name=name, exact=True)).to_be_visible()

        review.get_by_role("button", name="Edit tasks", exact=True).click()
        for seq in (1, 2, 3, 4):
            expect(page.locator(f"input[name=task-{seq}-description]")).to_be_visible()
        expect(review.get_by_role("button", name="Add task", exact=True)).to_be_visible()
        page.locator("input[name=task-2-description]").fill("Beta revised")
        # Remove Delta: the Remove button in Delta's row.
        row = page.locator("input[name=task-4-description]").locator(
            "xpath=ancestor::*[.//button[starts-with(normalize-space(.), 'Remove')"
            " or starts-with(@aria-label, 'Remove')]][1]"
        )
        remove = row.get_by_role("button", name=re.compile(r"^Remove"))
        expect(remove).to_have_count(1)
        remove.click()
        expect(page.locator("input[name=task-4-description]")).to_have_count(0)
        review.get_by_role("button", name="Add task", exact=True).click()
        added = review.locator("input[name^=task-][name$=-description]")
        expect(added).to_have_count(4)
        added.last.fill("Epsilon")
        review.get_by_role("button", name="Run edited plan", exact=True).click()

        expect(page.locator("[data-testid=op-status]")).to_have_text("completed")
        expect(page.locator("[data-testid=task-2]")).to_contain_text("Beta revised")
        expect(page.locator("[data-testid=task-2]")).to_contain_text("Revised beta result")
        expect(page.locator("[data-testid=task-4]")).to_contain_text("Epsilon result")
        expect(page.locator("[data-testid=task-5]")).to_have_count(0)
        expect(page.locator("svg[data-testid=plan-graph] g.node")).to_have_count(4)

        stored = dash.operation(op_id)
        assert stored["status"] == "completed"
        tasks = [(t["description"], t["status"], t["result"]) for t in stored["tasks"]]
        assert tasks == [
            ("Alpha", "completed", "Alpha result"),
            ("Beta revised", "completed", "Revised beta result"),
            ("Gamma", "completed", "Gamma result"),
            ("Epsilon", "completed", "Epsilon result"),
        ]
        assert stored["tasks"][2]["depends_on"] == [1, 2]

    def test_a_rerun_task_and_its_dependent_run_again(
        self, dashboard_factory: Callable[..., Dashboard]
    ) -> None:
        rerun = {
            "node": "execute_task",
            "match": "Use the cache",
            "reply": {"text": "Gamma result v2", "delay": 1.5},
        }
        delta = task_rule("Delta", "", 0.3)
        delta.pop("reply")
        delta["replies"] = [
            {"text": "Delta result", "delay": 0.3},
            {"text": "Delta result v2", "delay": 1.0},
        ]
        rules = four_task_rules(delays=(0.3, 0.3, 0.3, 0.3), first=[rerun, delta])
        dash = dashboard_factory(rules)
        dash.open()
        op_id = dash.start_from_page("Do the four steps", route="plan")
        page = dash.page
        expect(page.locator("[data-testid=op-status]")).to_have_text("completed")
        expect(page.locator("[data-testid=task-3]")).to_contain_text("Gamma result")

        panel = page.locator("[data-testid=task-3]")
        panel.get_by_role("button", name="Edit and rerun", exact=True).click()
        expect(panel.locator("textarea[name=rerun-description]")).to_be_visible()
        panel.locator("textarea[name=rerun-instructions]").fill("Use the cache")
        panel.get_by_role("button", name="Rerun", exact=True).click()

        expect(dash.node(3)).to_have_attribute("data-status", "in_progress")
        expect(page.locator("[data-testid=op-status]")).to_have_text(re.compile("running"))
        expect(dash.node(4)).to_have_attribute("data-status", "in_progress")
        expect(page.locator("[data-testid=op-status]")).to_have_text("completed")
        expect(dash.node(4)).to_have_attribute("data-status", "completed")
        expect(page.locator("[data-testid=task-3]")).to_contain_text("Gamma result v2")
        expect(page.locator("[data-testid=task-4]")).to_contain_text("Delta result v2")
        expect(page.locator("[data-testid=task-1]")).to_contain_text("Alpha result")
        expect(page.locator("[data-testid=task-2]")).to_contain_text("Beta result")

        # Gamma and Delta went back through in_progress; Alpha and Beta never left completed.
        for seq in (3, 4):
            trail = dash.node_history(seq)
            first_done = trail.index("completed")
            assert "in_progress" in trail[first_done:] and trail[-1] == "completed", (seq, trail)
        for seq in (1, 2):
            trail = dash.node_history(seq)
            assert trail[trail.index("completed") :] == ["completed"], (seq, trail)

        stored = {t["sequence"]: t for t in dash.operation(op_id)["tasks"]}
        assert [stored[s]["version"] for s in (1, 2, 3, 4)] == [1, 1, 2, 2]
        assert stored[3]["instructions"] == "Use the cache"
        assert stored[3]["result"] == "Gamma result v2"
        assert [h["result"] for h in stored[3]["history"]] == ["Gamma result"]
        assert stored[4]["result"] == "Delta result v2"
        assert (stored[1]["result"], stored[2]["result"]) == ("Alpha result", "Beta result")

    def test_a_page_on_an_ended_operation_follows_a_rerun_started_elsewhere(
        self, dashboard_factory: Callable[..., Dashboard]
    ) -> None:
        delta = task_rule("Delta", "", 0.3)
        delta.pop("reply")
        delta["replies"] = [
            {"text": "Delta result", "delay": 0.3},
            {"text": "Delta result v2", "delay": 1.5},
        ]
        dash = dashboard_factory(four_task_rules(delays=(0.3, 0.3, 0.3, 0.3), first=[delta]))
        dash.open()
        op_id = dash.start_from_page("Do the four steps", route="plan")
        page = dash.page
        expect(page.locator("[data-testid=stream-status]")).to_have_text("ended")

        # Another client (here the REST API) reruns Delta: the open page notices and follows.
        r = dash.api("POST", f"/v1/operations/{op_id}/tasks/4/rerun", json={})
        assert r.status_code == 202, r.text
        expect(page.locator("[data-testid=task-4]")).to_contain_text("Delta result v2")
        expect(page.locator("[data-testid=op-status]")).to_have_text("completed")
        expect(page.locator("[data-testid=task-4]")).to_contain_text("version 2")
        expect(page.locator("[data-testid=stream-status]")).to_have_text("ended")
        seqs = page.locator("[data-testid=event-log] li").evaluate_all(
            "items => items.map((li) => Number(li.dataset.seq))"
        )
        stored = [e["seq"] for e in dash.operation(op_id, events=True)["events"]]
        assert seqs == stored

    def test_cancelling_ends_the_operation_and_its_unfinished_tasks(
        self, dashboard_factory: Callable[..., Dashboard]
    ) -> None:
        dash = dashboard_factory(four_task_rules(delays=(0.5, 60.0, 1.0, 1.0)))
        dash.open()
        op_id = dash.start_from_page("Do the four steps", route="plan")
        page = dash.page
        page.on("dialog", lambda dialog: dialog.accept())  # should it ask to confirm
        expect(dash.node(1)).to_have_attribute("data-status", "completed")
        expect(dash.node(2)).to_have_attribute("data-status", "in_progress")

        page.locator("[data-testid=cancel]").click()
        expect(page.locator("[data-testid=op-status]")).to_have_text("cancelled")
        expect(dash.node(1)).to_have_attribute("data-status", "completed")
        for seq in (2, 3, 4):
            expect(dash.node(seq)).to_have_attribute("data-status", "cancelled")
        expect(page.locator("[data-testid=cancel]")).to_be_hidden()
        expect(page.locator("[data-testid=stream-status]")).to_have_text("ended")

        stored = dash.operation(op_id)
        assert stored["status"] == "cancelled"
        assert [t["status"] for t in stored["tasks"]] == [
            "completed",
            "cancelled",
            "cancelled",
            "cancelled",
        ]

    def test_the_event_stream_resumes_after_a_network_cut_without_gaps_or_repeats(
        self, dashboard_factory: Callable[..., Dashboard]
    ) -> None:
        dash = dashboard_factory(four_task_rules(delays=(1.0, 1.0, 3.0, 3.0), synthesize=1.0))
        # The browser reports the connections the cut broke (and refused) as failed loads.
        dash.allow_console(r"net::ERR_")
        dash.open()
        op_id = dash.start_from_page("Do the four steps", route="plan")
        page = dash.page
        status = page.locator("[data-testid=stream-status]")
        expect(status).to_have_text("live")
        expect(dash.node(1)).to_have_attribute("data-status", "completed")

        cut = dash.proxy.cut(refuse_for=2.5)
        assert cut >= 1, "the event stream's connection was not open"
        expect(status).to_have_text("reconnecting")
        expect(status).to_have_text("live", timeout=20_000)
        expect(page.locator("[data-testid=op-status]")).to_have_text("completed")
        expect(status).to_have_text("ended")
        history = dash.status_history()
        assert _is_subsequence(["live", "reconnecting", "live", "ended"], history), history

        stored = [e["seq"] for e in dash.operation(op_id, events=True)["events"]]
        assert stored == list(range(1, len(stored) + 1))
        shown = page.locator("ol[data-testid=event-log] > li[data-seq]").evaluate_all(
            "items => items.map(li => Number(li.dataset.seq))"
        )
        assert shown == stored, f"event log {shown} != stored events {stored}"
        # Each event that came over the stream was applied once, none skipped: the events
        # before them came with the page's first read of the operation.
        applied = [m["seq"] for m in page.evaluate("window.__crewchiefMetrics")]
        assert applied and applied == stored[stored.index(applied[0]) :], (applied, stored)

    def test_replan_with_feedback_then_accept_the_new_plan(
        self, dashboard_factory: Callable[..., Dashboard]
    ) -> None:
        smaller = {
            "node": "plan",
            "match": "Fewer steps, please",
            "reply": {
                **plan_reply("Alpha", ("Beta", [1]), summary="Two steps"),
                "delay": 0.3,
            },
        }
        dash = dashboard_factory(four_task_rules(delays=(0.3, 0.3, 0.3, 0.3), first=[smaller]))
        dash.open()
        op_id = dash.start_from_page("Do the four steps", route="plan", approve=True)
        page = dash.page
        review = page.locator("[data-testid=plan-review]")
        expect(page.locator("svg[data-testid=plan-graph] g.node")).to_have_count(4)
        review.get_by_role("button", name="Replan", exact=True).click()
        page.locator("textarea[name=replan-feedback]").fill("Fewer steps, please")
        review.get_by_role("button", name="Send feedback", exact=True).click()

        # The new plan awaits approval in its turn.
        expect(page.locator("svg[data-testid=plan-graph] g.node")).to_have_count(2)
        expect(page.locator("[data-testid=op-status]")).to_have_text(
            re.compile(r"awaiting.approval")
        )
        review.get_by_role("button", name="Accept", exact=True).click()
        expect(page.locator("[data-testid=op-status]")).to_have_text("completed")
        expect(review).to_be_hidden()
        stored = dash.operation(op_id)
        assert [(t["description"], t["status"]) for t in stored["tasks"]] == [
            ("Alpha", "completed"),
            ("Beta", "completed"),
        ]

    def test_a_rejected_plan_ends_the_operation(
        self, dashboard_factory: Callable[..., Dashboard]
    ) -> None:
        dash = dashboard_factory(four_task_rules(plan=0.1))
        dash.open()
        op_id = dash.start_from_page("Do the four steps", route="plan", approve=True)
        page = dash.page
        review = page.locator("[data-testid=plan-review]")
        review.get_by_role("button", name="Reject", exact=True).click()
        expect(page.locator("[data-testid=op-status]")).to_have_text("rejected")
        expect(page.locator("[data-testid=stream-status]")).to_have_text("ended")
        expect(review).to_be_hidden()
        assert dash.operation(op_id)["status"] == "rejected"

    def test_the_list_shows_new_operations_without_a_reload_and_filters_them(
        self, dashboard_factory: Callable[..., Dashboard]
    ) -> None:
        dash = dashboard_factory(four_task_rules(plan=0.1, delays=(0.1, 0.1, 0.1, 0.1)))
        dash.open()
        page = dash.page
        for name in ("status", "route", "key", "since", "until", "q"):
            expect(page.locator(f"#filter-{name}")).to_be_visible()

        def start(request: str, route: str) -> str:
            r = dash.api("POST", "/v1/operations", json={"request": request, "route": route})
            assert r.status_code == 202, r.text
            return r.json()["id"]

        quick, planned = start("What is a monad?", "fast"), start("Do the four steps", "plan")
        # Polled in: no reload, no navigation.
        quick_row = page.locator(f"tr[data-op-id='{quick}']")
        planned_row = page.locator(f"tr[data-op-id='{planned}']")
        expect(planned_row.locator("[data-field=status]")).to_have_text(re.compile("completed"))
        expect(quick_row.locator("[data-field=route]")).to_have_text(re.compile("fast"))

        _set(page.locator("#filter-route"), "plan")
        expect(quick_row).to_have_count(0)
        expect(planned_row).to_be_visible()
        _set(page.locator("#filter-route"), "")
        _set(page.locator("#filter-q"), "monad")
        expect(planned_row).to_have_count(0)
        expect(quick_row).to_be_visible()
        _set(page.locator("#filter-q"), "")
        _set(page.locator("#filter-status"), "running")
        expect(page.locator("tr[data-op-id]")).to_have_count(0)
        _set(page.locator("#filter-status"), "completed")
        expect(page.locator("tr[data-op-id]")).to_have_count(2)


def _set(control: Any, value: str) -> None:
    """Choose ``value`` in a filter, whether it is a select or a text field."""
    if control.evaluate("el => el.tagName") == "SELECT":
        control.select_option(value)
    else:
        control.fill(value)
