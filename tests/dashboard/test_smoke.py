"""The page at ``/`` loads in a real browser, with its navigation, on a keyless server."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import expect

from tests.dashboard.conftest import Dashboard

pytestmark = pytest.mark.browser

SECTIONS = {
    "Operations": "#/operations",
    "Usage": "#/usage",
    "Gateway": "#/gateway",
    "Feedback": "#/feedback",
}


def test_the_page_loads_with_the_operations_list_and_its_navigation(
    dashboard_factory: Callable[..., Dashboard],
) -> None:
    dash = dashboard_factory()
    page = dash.page
    response = page.goto(f"{dash.url}/")
    assert response is not None and response.status == 200
    assert response.headers["content-type"].startswith("text/html")
    page.wait_for_function("() => window.__crewchiefLoaded !== undefined")
    loaded = page.evaluate("window.__crewchiefLoaded")
    assert isinstance(loaded, int | float) and loaded > 0

    expect(page).to_have_title(re.compile(r"\bcrewchief\b"))
    # Without a hash the operations list is the default view.
    expect(page.locator("[data-testid=new-operation]")).to_be_visible()
    nav = page.get_by_role("navigation")
    for name, href in SECTIONS.items():
        expect(nav.get_by_role("link", name=name, exact=True)).to_have_attribute("href", href)

    # Every section opens from its link, without a console error (checked at the end).
    for name, href in SECTIONS.items():
        nav.get_by_role("link", name=name, exact=True).click()
        expect(page).to_have_url(f"{dash.url}/{href}")
        page.wait_for_load_state("networkidle")
