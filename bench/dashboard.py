"""The web dashboard in a real browser: page load time and event → screen latency.

Run from the repository root::

    python -m bench.dashboard [--loads 10] [--ops 3] [--tasks 12] [--json]

The harness starts ``crewchief serve`` itself (a fresh temporary ``CREWCHIEF_HOME``, one
API key, a scripted ``fake:`` model, a free loopback port) and drives Debian's Chromium
(``/usr/bin/chromium``) with Playwright, which downloads no browser. The key is put in
the page's ``sessionStorage`` before each load, as the key form would keep it.

- events: ``--ops`` planned operations of ``--tasks`` tasks each (waves of three parallel
  tasks), each followed in its operation view from before it plans. For every stored event
  the view applies from its stream, ``window.__crewchiefMetrics`` holds when the server created it, when
  the page received it and when the updated screen was painted. Events created before the
  view showed its stream live were replayed, not followed live: they are left out of the
  latency figures, and so are the events the view read with the operation
  before its stream opened. An event stored after those that the view never applied is
  counted as missing.
- load: ``--loads`` loads of the operations list, from navigation start to
  ``window.__crewchiefLoaded`` (set when the first view has rendered). Cold: each load in a
  new browser context (empty cache, new connections). Warm: loads in one context after a
  first, untimed one.

This is a report, not a test: it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench._scenarios import percentile
from bench.server import ServerProcess, build_report, render_table

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach Google's
# services, which a closed network refuses (and which a test must never contact).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

TARGETS: dict[str, tuple[str, float]] = {
    "load_cold_p95_ms": ("≤", 1000.0),
    "load_warm_p95_ms": ("≤", 500.0),
    "event_created_p95_ms": ("≤", 100.0),
    "event_received_p95_ms": ("≤", 50.0),
    "events_missing": ("≤", 0),
}
ROWS: dict[str, tuple[str, str, str]] = {
    "load_cold_p50_ms": ("load", "navigation → first view rendered, cold, p50", "ms"),
    "load_cold_p95_ms": ("load", "  cold, p95", "ms"),
    "load_warm_p50_ms": ("load", "navigation → first view rendered, warm, p50", "ms"),
    "load_warm_p95_ms": ("load", "  warm, p95", "ms"),
    "loads": ("load", "loads timed (each of cold and warm)", ""),
    "event_created_p50_ms": ("events", "created_at → painted, p50", "ms"),
    "event_created_p95_ms": ("events", "created_at → painted, p95", "ms"),
    "event_created_max_ms": ("events", "created_at → painted, max", "ms"),
    "event_received_p50_ms": ("events", "received → painted, p50", "ms"),
    "event_received_p95_ms": ("events", "received → painted, p95", "ms"),
    "event_received_max_ms": ("events", "received → painted, max", "ms"),
    "events_measured": ("events", "live events measured", ""),
    "events_replayed": ("events", "replayed events left out", ""),
    "events_missing": ("events", "stored events the view never applied", ""),
}
PLAN_DELAY = 1.0  # seconds the planner "thinks": the view is open and live before the plan
TASK_DELAY = 0.15


def launch_chromium(playwright: Any) -> Any:
    """Debian's Chromium under Playwright (``playwright.chromium.launch``), headless.

    Raises:
        RuntimeError: ``/usr/bin/chromium`` is not installed.
    """
    if not Path(CHROMIUM).exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: install Debian's chromium "
            "(apt-get install --no-install-recommends chromium); Playwright must not "
            "download a browser"
        )
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def wave_plan(tasks: int) -> dict[str, Any]:
    """A plan of ``tasks`` tasks in waves of three; each wave depends on the one before."""
    items = []
    for i in range(1, tasks + 1):
        wave = (i - 1) // 3
        before = [j for j in range(1, i) if (j - 1) // 3 == wave - 1]
        items.append(
            {
                "id": i,
                "description": f"Step {i}",
                "active_form": f"Doing step {i}",
                "depends_on": before,
            }
        )
    return {"summary": f"{tasks} steps in waves", "tasks": items}


def write_script(path: Path, tasks: int) -> str:
    rules = [
        {"node": "plan", "reply": {"plan": wave_plan(tasks), "delay": PLAN_DELAY}},
        {"node": "execute_task", "reply": {"text": "Step done.", "delay": TASK_DELAY}},
        {"node": "synthesize", "reply": {"text": "All steps done.", "delay": TASK_DELAY}},
    ]
    path.write_text(json.dumps({"rules": rules}), encoding="utf-8")
    return f"fake:{path}"


def _key_script(key: str) -> str:
    return f"sessionStorage.setItem('crewchief.key', {json.dumps(key)});"


def follow_operation(browser: Any, server: ServerProcess, base: str) -> dict[str, Any]:
    """Start one planned operation and follow it in its view; its metrics and stored seqs."""
    context = browser.new_context()
    try:
        context.add_init_script(_key_script(server.key))
        page = context.new_page()
        page.goto(f"{base}/#/operations")
        page.wait_for_function("() => window.__crewchiefLoaded !== undefined")
        created = httpx.post(
            f"{base}/v1/operations",
            json={"request": "Run every step", "route": "plan"},
            headers=server.auth,
            timeout=30,
        )
        created.raise_for_status()
        op_id = created.json()["id"]
        page.goto(f"{base}/#/operations/{op_id}")
        page.locator("[data-testid=stream-status]", has_text="live").wait_for(timeout=30_000)
        live_since = page.evaluate("Date.now()")
        status = page.locator("[data-testid=op-status]")
        status.filter(has_text="completed").wait_for(timeout=120_000)
        page.locator("[data-testid=stream-status]", has_text="ended").wait_for(timeout=30_000)
        page.wait_for_timeout(100)  # the last requestAnimationFrame stamps
        metrics = page.evaluate("window.__crewchiefMetrics || []")
        stored = httpx.get(
            f"{base}/v1/operations/{op_id}", params={"events": "true"}, headers=server.auth
        ).json()["events"]
        return {
            "metrics": metrics,
            "stored": [e["seq"] for e in stored],
            "live_since": live_since,
        }
    finally:
        context.close()


def event_figures(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Latency percentiles of the live events of ``runs``; replayed and missing counts."""
    created, received = [], []
    replayed = missing = 0
    for run in runs:
        metrics = [m for m in run["metrics"] if m.get("renderedAt") is not None]
        if not metrics:
            missing += len(run["stored"])
            continue
        # The events before the first one streamed came with the view's first read.
        applied = {m["seq"] for m in metrics}
        missing += len({s for s in run["stored"] if s > min(applied)} - applied)
        for m in metrics:
            if m["createdAt"] < run["live_since"]:
                replayed += 1
                continue
            created.append(m["renderedAt"] - m["createdAt"])
            received.append(m["renderedAt"] - m["receivedAt"])
    values: dict[str, Any] = {}
    for name, xs in (("created", created), ("received", received)):
        values[f"event_{name}_p50_ms"] = percentile(xs, 50)
        values[f"event_{name}_p95_ms"] = percentile(xs, 95)
        values[f"event_{name}_max_ms"] = float(max(xs)) if xs else None
    values.update(events_measured=len(created), events_replayed=replayed, events_missing=missing)
    return values


def time_loads(browser: Any, server: ServerProcess, base: str, loads: int) -> dict[str, Any]:
    """Cold and warm load times of the operations list (ms from navigation start)."""
    url = f"{base}/#/operations"
    done = "() => window.__crewchiefLoaded !== undefined"

    def load(page: Any) -> float:
        page.goto(url)
        page.wait_for_function(done)
        return page.evaluate("window.__crewchiefLoaded")

    cold = []
    for _ in range(loads):
        context = browser.new_context()
        context.add_init_script(_key_script(server.key))
        cold.append(load(context.new_page()))
        context.close()
    context = browser.new_context()
    context.add_init_script(_key_script(server.key))
    page = context.new_page()
    load(page)  # fills the cache and opens the connections
    warm = []
    for _ in range(loads):
        page.goto("about:blank")
        warm.append(load(page))
    context.close()
    return {
        "load_cold_p50_ms": percentile(cold, 50),
        "load_cold_p95_ms": percentile(cold, 95),
        "load_warm_p50_ms": percentile(warm, 50),
        "load_warm_p95_ms": percentile(warm, 95),
        "loads": loads,
    }


def collect(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="crewchief-bench-dashboard-") as tmp:
        root = Path(tmp)
        model = write_script(root / "script.json", args.tasks)
        server = ServerProcess(root / "home", model)
        try:
            print("  starting crewchief serve", file=sys.stderr)
            server.start()
            assert server.process is not None
            print(f"  server pid {server.process.pid} on port {server.port}", file=sys.stderr)
            base = f"http://{server.host}:{server.port}"
            with sync_playwright() as p:
                browser = launch_chromium(p)
                try:
                    print(f"  events: {args.ops} operations of {args.tasks} tasks", file=sys.stderr)
                    runs = [follow_operation(browser, server, base) for _ in range(args.ops)]
                    print(f"  load: {args.loads} cold and {args.loads} warm", file=sys.stderr)
                    values = time_loads(browser, server, base, args.loads)
                finally:
                    browser.close()
            values.update(event_figures(runs))
            return values
        finally:
            server.stop()


def print_table(report: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    """Print the report as a rich table, then the overall line."""
    title = (
        f"dashboard in Chromium ({args.loads} loads each, {args.ops} operations of "
        f"{args.tasks} tasks, fake model)"
    )
    render_table(title, report, ROWS, TARGETS, width=100)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, and print the table (or JSON). Always returns 0."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.dashboard", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--loads", type=int, default=10, help="timed loads, cold and warm (10)")
    parser.add_argument("--ops", type=int, default=3, help="operations followed (3)")
    parser.add_argument("--tasks", type=int, default=12, help="tasks per operation (12)")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    if min(args.loads, args.ops, args.tasks) < 1 or args.tasks > 50:
        parser.error("--loads, --ops and --tasks must be at least 1 (--tasks at most 50)")
    report = build_report(collect(args), 0, TARGETS)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
