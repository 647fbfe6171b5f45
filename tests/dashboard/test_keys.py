"""The dashboard on a server with API keys: the key gate, and an operation followed with a key."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.dashboard._axe import serious_violations
from tests.dashboard.conftest import Dashboard, four_task_rules

pytestmark = pytest.mark.browser

REFUSED = re.compile(r"invalid|unknown|wrong|not valid|not accepted|rejected|refused|revoked", re.I)


class TestWithApiKeys:
    def test_the_key_gate_refuses_a_wrong_key_then_keeps_the_right_one(
        self, dashboard_factory: Callable[..., Dashboard]
    ) -> None:
        dash = dashboard_factory(auth=True)
        # The page's calls without a key, then with the wrong one, are answered 401.
        dash.allow_console(r"status of 401")
        mine = dash.api("POST", "/v1/operations", json={"request": "Mine", "route": "fast"})
        bobs = dash.api(
            "POST",
            "/v1/operations",
            json={"request": "Bob's", "route": "fast"},
            headers={"Authorization": f"Bearer {dash.server.keys['bob']}"},
        )
        assert mine.status_code == bobs.status_code == 202, (mine.text, bobs.text)
        page = dash.page
        page.goto(f"{dash.url}/")

        form = page.locator("#key-form")
        expect(form).to_be_visible()
        key_input = form.get_by_label("API key")
        expect(key_input).to_have_attribute("id", "api-key")
        expect(page.locator("[data-testid=new-operation]")).to_have_count(0)

        assert dash.key is not None
        wrong = dash.key[:-4] + ("aaaa" if not dash.key.endswith("aaaa") else "bbbb")
        key_input.fill(wrong)
        form.get_by_role("button", name="Use key", exact=True).click()
        expect(page.get_by_text(REFUSED).first).to_be_visible()
        expect(form).to_be_visible()
        expect(page.locator("[data-testid=new-operation]")).to_have_count(0)
        assert not serious_violations(page), serious_violations(page)

        form.get_by_label("API key").fill(dash.key)
        form.get_by_role("button", name="Use key", exact=True).click()
        expect(page.locator("[data-testid=new-operation]")).to_be_visible()
        expect(page.locator("#key-form")).to_have_count(0)
        expect(page.locator(f"tr[data-op-id='{mine.json()['id']}']")).to_be_visible()
        # Another owner's operation is not listed.
        expect(page.locator(f"tr[data-op-id='{bobs.json()['id']}']")).to_have_count(0)
        assert page.evaluate("sessionStorage.getItem('crewchief.key')") == dash.key

        page.reload()
        expect(page.locator(f"tr[data-op-id='{mine.json()['id']}']")).to_be_visible()
        expect(page.locator("#key-form")).to_have_count(0)

    def test_an_operation_started_with_a_key_streams_to_its_end(
        self, dashboard_factory: Callable[..., Dashboard]
    ) -> None:
        dash = dashboard_factory(
            four_task_rules(plan=0.3, delays=(0.5, 0.5, 0.5, 0.5), synthesize=0.3), auth=True
        )
        dash.allow_console(r"status of 401")  # the first load, before the key is given
        dash.page.goto(f"{dash.url}/")
        assert dash.key is not None
        dash.page.locator("#api-key").fill(dash.key)
        dash.page.get_by_role("button", name="Use key", exact=True).click()
        op_id = dash.start_from_page("Do the four steps", route="plan")
        page = dash.page
        expect(page.locator("[data-testid=stream-status]")).to_have_text("live")
        expect(page.locator("[data-testid=op-status]")).to_have_text("completed")
        expect(page.locator("[data-testid=answer]")).to_contain_text("All four steps are done.")
        expect(page.locator("[data-testid=stream-status]")).to_have_text("ended")
        stored = dash.operation(op_id, events=True)
        shown = page.locator("ol[data-testid=event-log] > li[data-seq]")
        expect(shown).to_have_count(len(stored["events"]))
