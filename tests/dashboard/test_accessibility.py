"""Accessibility: axe-core finds no serious or critical violation on any view, and the list
and an operation fit a phone's width.

axe-core comes inside ``axe-playwright-python`` (its ``axe.min.js`` is injected into the
page): the check runs offline, and the request guard of every test would catch it if not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.dashboard._axe import horizontal_overflow, serious_violations
from tests.dashboard.conftest import Dashboard, four_task_rules

pytestmark = pytest.mark.browser


class TestKeylessServer:
    def test_no_view_has_a_serious_accessibility_violation_and_phones_fit(
        self, dashboard_factory: Callable[..., Dashboard]
    ) -> None:
        dash = dashboard_factory(
            four_task_rules(plan=0.1, delays=(0.1, 0.1, 0.1, 0.1), synthesize=0.1)
        )
        dash.open()
        op_id = dash.start_from_page("Do the four steps", route="plan")
        page = dash.page
        expect(page.locator("[data-testid=op-status]")).to_have_text("completed")
        waiting = dash.api(
            "POST",
            "/v1/operations",
            json={"request": "Plan the four steps", "route": "plan", "approve_plan": True},
        ).json()["id"]
        rated = dash.api("POST", f"/v1/operations/{op_id}/feedback", json={"thumb": "up"})
        assert rated.status_code == 201, rated.text

        views: dict[str, tuple[str, str]] = {
            "operations list": ("#/operations", f"tr[data-op-id='{op_id}']"),
            "operation": (f"#/operations/{op_id}", "[data-testid=answer]"),
            "plan review": (f"#/operations/{waiting}", "[data-testid=plan-review]"),
            "usage": ("#/usage", "main h1"),
            "gateway": ("#/gateway", "main h1"),
            "feedback": ("#/feedback", "main h1"),
        }
        found = {}
        for name, (route, ready) in views.items():
            dash.open(route)
            expect(page.locator(ready).first).to_be_visible()
            page.wait_for_load_state("networkidle")
            found[name] = serious_violations(page)
        # The edit form of a plan under review, too.
        dash.open(f"#/operations/{waiting}")
        page.locator("[data-testid=plan-review]").get_by_role(
            "button", name="Edit tasks", exact=True
        ).click()
        expect(page.locator("input[name=task-1-description]")).to_be_visible()
        found["plan review, editing"] = serious_violations(page)
        report = "\n".join(f"{view}: {line}" for view, lines in found.items() for line in lines)
        assert not report, f"serious or critical accessibility violations:\n{report}"

        # A 390 px wide phone: the list and an operation fit without scrolling sideways.
        page.set_viewport_size({"width": 390, "height": 844})
        for route, ready in (views["operations list"], views["operation"]):
            dash.open(route)
            page.reload()
            page.wait_for_function("() => window.__crewchiefLoaded !== undefined")
            expect(page.locator(ready).first).to_be_visible()
            assert horizontal_overflow(page) <= 1, f"{route} is wider than a 390 px phone"


def test_the_checks_can_fail(browser: Any) -> None:
    """An image without a text alternative is a critical violation; a wide box overflows."""
    page = browser.new_page(viewport={"width": 390, "height": 844})
    try:
        page.set_content(
            '<html lang="en"><title>t</title><main><img src="data:image/gif;base64,'
            'R0lGODlhAQABAAAAACw="><div style="width:600px">wide</div></main></html>'
        )
        assert any("image-alt" in line for line in serious_violations(page))
        assert horizontal_overflow(page) > 1
    finally:
        page.close()
