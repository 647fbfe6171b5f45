"""Fixtures for the dashboard's browser tests: a real server, a cuttable proxy, Chromium.

Each test gets its own ``crewchief serve`` (its own home, so its own SQLite database) on a
free loopback port, running a scripted ``fake:`` model, and reaches it through a
:class:`CuttableProxy` so it can cut the network under the page. The browser is Debian's
Chromium driven by Playwright (``bench.dashboard.launch_chromium``).

Every page's console errors, uncaught exceptions and requests to hosts other than the
loopback are recorded; at the end of the test any of them fails it, and a screenshot of
each page is saved under ``test-artifacts/dashboard/`` (gitignored).

Without Chromium or Playwright the tests are skipped, with the reason, unless
``CREWCHIEF_REQUIRE_BROWSER=1`` (``scripts/test.sh`` sets it): then they fail.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from bench.dashboard import CHROMIUM, launch_chromium
from tests.api.conftest import LiveServer, live_server_factory  # noqa: F401 - a fixture
from tests.conftest import plan_reply, write_script
from tests.dashboard._proxy import CuttableProxy

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "dashboard"
TIMEOUT_MS = 15_000  # a hang guard for every wait on the page
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}
LOCAL_SCHEMES = {"data", "blob", "about", "chrome-extension", "devtools"}

# Records every text [data-testid=stream-status] shows and every status each plan-graph node
# takes (per operation view), so a test sees a state that lasted only a moment (reconnecting,
# a task in progress) even if it looked at the page a little late.
HISTORY_SCRIPT = """(() => {
  const seen = [];
  const nodes = {};
  window.__streamStatusHistory = seen;
  window.__nodeStatusHistory = nodes;
  const check = () => {
    const el = document.querySelector('[data-testid=stream-status]');
    const text = el ? el.textContent.trim() : null;
    if (text && seen[seen.length - 1] !== text) seen.push(text);
    const view = nodes[location.hash] || (nodes[location.hash] = {});
    for (const node of document.querySelectorAll('svg[data-testid=plan-graph] g.node[data-task]')) {
      const task = node.getAttribute('data-task');
      const status = node.getAttribute('data-status');
      const trail = view[task] || (view[task] = []);
      if (status && trail[trail.length - 1] !== status) trail.push(status);
    }
  };
  new MutationObserver(check).observe(document, {
    subtree: true, childList: true, characterData: true, attributes: true,
  });
})();"""


def _unavailable(reason: str) -> None:
    if os.environ.get("CREWCHIEF_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (CREWCHIEF_REQUIRE_BROWSER=1: the browser tests must run)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def chromium_installed() -> None:
    """Playwright and Debian's Chromium are there (else skip, or fail in CI)."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("playwright is not installed (it is in the dev extra)")
    if not Path(CHROMIUM).exists():
        _unavailable(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does)")


@pytest.fixture(scope="module")
def browser(chromium_installed: None) -> Iterator[Any]:
    """Debian's Chromium, headless, for every test of a module."""
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as p:
        chromium = launch_chromium(p)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass
class Dashboard:
    """One browser page on the dashboard of its own server, through a cuttable proxy."""

    server: LiveServer
    proxy: CuttableProxy
    context: Any
    page: Any
    key: str | None  # what the REST helpers send; None on a keyless server
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)
    allowed_console: list[re.Pattern[str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        """The dashboard's base URL as the browser sees it (the proxy's)."""
        return self.proxy.url

    def open(self, route: str = "#/operations") -> None:
        """Go to ``route`` (a page load the first time, then a hash change) and wait until
        the dashboard's first view has rendered; wait for a view's own content with
        ``expect``."""
        self.page.goto(f"{self.url}/{route}")
        self.page.wait_for_function("() => window.__crewchiefLoaded !== undefined")

    def allow_console(self, pattern: str) -> None:
        """Console errors matching ``pattern`` are expected in this test (e.g. a 401)."""
        self.allowed_console.append(re.compile(pattern))

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A REST call straight to the server (not through the proxy), with the test's key
        unless ``headers`` name another."""
        headers = {"Authorization": f"Bearer {self.key}"} if self.key else {}
        headers.update(kwargs.pop("headers", {}))
        return httpx.request(
            method, f"{self.server.url}{path}", headers=headers, timeout=30, **kwargs
        )

    def operation(self, op_id: str, events: bool = False) -> dict[str, Any]:
        """``GET /v1/operations/{id}`` as the server stores it."""
        r = self.api("GET", f"/v1/operations/{op_id}", params={"events": str(events).lower()})
        assert r.status_code == 200, r.text
        return r.json()

    def start_from_page(self, request: str, route: str = "plan", approve: bool = False) -> str:
        """Fill the new-operation form and press Start; the new operation's id."""
        page = self.page
        form = page.locator("[data-testid=new-operation]")
        form.locator("#new-request").fill(request)
        form.locator("#new-route").select_option(route)
        form.locator("#new-approve").set_checked(approve)
        form.get_by_role("button", name="Start").click()
        page.wait_for_url(re.compile(r"#/operations/[0-9a-f-]{8,}$"))
        return page.url.rsplit("/", 1)[1]

    def node(self, seq: int) -> Any:
        """The plan graph's node of task ``seq``."""
        return self.page.locator(f"svg[data-testid=plan-graph] g.node[data-task='{seq}']")

    def status_history(self) -> list[str]:
        """Every text the stream status showed since the page loaded, in order."""
        return self.page.evaluate("window.__streamStatusHistory || []")

    def node_history(self, seq: int) -> list[str]:
        """Every status the node of task ``seq`` showed in the current operation view."""
        trails = self.page.evaluate("(window.__nodeStatusHistory || {})[location.hash] || {}")
        return trails.get(str(seq), [])

    def problems(self) -> list[str]:
        unexpected = [
            text
            for text in self.console_errors
            if not any(p.search(text) for p in self.allowed_console)
        ]
        return (
            [f"console error: {t}" for t in unexpected]
            + [f"uncaught exception: {t}" for t in self.page_errors]
            + [f"request to a foreign host: {t}" for t in self.foreign_requests]
        )


def _watch(dash: Dashboard) -> None:
    def on_console(message: Any) -> None:
        if message.type == "error":
            where = message.location.get("url", "") if message.location else ""
            dash.console_errors.append(f"{message.text} ({where})" if where else message.text)

    def on_request(request: Any) -> None:
        parts = urlsplit(request.url)
        if parts.scheme not in LOCAL_SCHEMES and parts.hostname not in LOCAL_HOSTS:
            dash.foreign_requests.append(f"{request.method} {request.url}")

    def on_page(page: Any) -> None:
        page.on("pageerror", lambda error: dash.page_errors.append(str(error)))

    dash.context.on("console", on_console)
    dash.context.on("request", on_request)
    dash.context.on("page", on_page)


def _artifact_name(nodeid: str, index: int) -> str:
    module, _, test = nodeid.partition("::")
    where = f"{Path(module).stem}-{test}"
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", where).strip("_")
    return f"{name}.png" if index == 0 else f"{name}-{index}.png"


@pytest.fixture
def dashboard_factory(
    browser: Any,
    live_server_factory: Callable[..., LiveServer],  # noqa: F811 - the imported fixture
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> Iterator[Callable[..., Dashboard]]:
    """``dashboard_factory(rules=[...], auth=False, viewport=(w, h), env={}, args=[])``: a
    page on a new server.

    ``rules`` script the server's ``fake:`` model (``fake:default`` without). ``auth=False``
    starts ``crewchief serve --no-auth``; with ``auth=True`` the server has keys of owners
    alice and bob, and the REST helpers send alice's (the page asks for a key). ``env``:
    more ``CREWCHIEF_*`` (or provider) variables for the server; ``args``: more ``serve``
    arguments (``--workers 1``).
    """
    made: list[Dashboard] = []
    counter = itertools.count()

    def make(
        rules: list[dict[str, Any]] | None = None,
        *,
        auth: bool = False,
        viewport: tuple[int, int] = (1280, 900),
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
    ) -> Dashboard:
        model = write_script(tmp_path, rules) if rules is not None else "fake:default"
        server = live_server_factory(
            env={"CREWCHIEF_MODEL": model, **(env or {})},
            args=([] if auth else ["--no-auth"]) + (args or []),
        )
        proxy = CuttableProxy(int(server.url.rsplit(":", 1)[1])).start()
        context = browser.new_context(viewport={"width": viewport[0], "height": viewport[1]})
        context.set_default_timeout(TIMEOUT_MS)
        context.add_init_script(HISTORY_SCRIPT)
        dash = Dashboard(server, proxy, context, None, server.keys.get("alice") if auth else None)
        _watch(dash)
        dash.page = context.new_page()
        made.append(dash)
        return dash

    yield make

    problems = []
    for dash in made:
        with contextlib.suppress(Exception):
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            shot = ARTIFACTS / _artifact_name(request.node.nodeid, next(counter))
            dash.page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
        with contextlib.suppress(Exception):
            dash.context.close()
        dash.proxy.close()
        problems += dash.problems()
    if problems:
        pytest.fail("the page reported problems:\n" + "\n".join(problems), pytrace=False)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if ARTIFACTS.is_dir() and any(ARTIFACTS.glob("*.png")):
        terminalreporter.write_line(f"dashboard screenshots: {ARTIFACTS}")


# -- a scripted planned operation ----------------------------------------------------------

TASKS = ("Alpha", "Beta", "Gamma", "Delta")


def task_rule(name: str, text: str, delay: float, **extra: Any) -> dict[str, Any]:
    """A rule answering the task described ``name`` (``match`` on its prompt)."""
    return {
        "node": "execute_task",
        "match": rf"Task:\s*{re.escape(name)}\b",
        "reply": {"text": text, "delay": delay},
        **extra,
    }


def four_task_rules(
    *,
    plan: float = 0.5,
    delays: tuple[float, float, float, float] = (2.0, 2.0, 1.5, 1.5),
    synthesize: float = 0.5,
    first: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Alpha and Beta in parallel, Gamma after both, Delta after Gamma; each task's reply
    is "<name> result" after its delay. ``first``: rules that take precedence."""
    reply = plan_reply(
        ("Alpha", []), ("Beta", []), ("Gamma", [1, 2]), ("Delta", [3]), summary="Four steps"
    )
    return [
        *(first or []),
        {"node": "plan", "reply": {**reply, "delay": plan}},
        *(task_rule(name, f"{name} result", d) for name, d in zip(TASKS, delays, strict=True)),
        {"node": "synthesize", "reply": {"text": "All four steps are done.", "delay": synthesize}},
    ]
