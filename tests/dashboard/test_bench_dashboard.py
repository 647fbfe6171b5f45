"""``python -m bench.dashboard``: the dashboard benchmark runs end to end and cleans up.

Only the shape of the report and the counts are checked, never the speed.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from bench import dashboard
from tests.bench._run import run_harness

pytestmark = pytest.mark.browser


def test_tiny_run_reports_every_measurement_and_stops_its_server(chromium_installed: None) -> None:
    report, stderr = run_harness("bench.dashboard", "--loads", "2", "--ops", "1", "--tasks", "3")

    assert set(report) == {*dashboard.ROWS, "all_targets_met"}
    for key in dashboard.ROWS:
        m = report[key]
        assert set(m) == {"value", "target", "pass"}, key
        assert isinstance(m["value"], int | float) and not isinstance(m["value"], bool), (key, m)
        assert m["value"] >= 0, (key, m)
    assert report["loads"]["value"] == 2
    assert report["events_missing"]["value"] == 0, stderr[-3000:]
    # Three tasks (started, completed), the plan and the end, at the least, followed live.
    assert report["events_measured"]["value"] >= 8
    assert report["event_created_p50_ms"]["value"] <= report["event_created_max_ms"]["value"]
    overall = all(report[k]["pass"] is not False for k in dashboard.ROWS)
    assert report["all_targets_met"]["value"] is overall

    pids = [int(p) for p in re.findall(r"server pid (\d+)", stderr)]
    assert len(pids) == 1
    assert not _serving(pids[0]), f"server {pids[0]} still runs"


def _serving(pid: int) -> bool:
    """Whether ``pid`` is (still) a ``crewchief serve`` process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"crewchief.cli" in cmdline and b"serve" in cmdline


def test_live_events_only_are_timed_and_unapplied_ones_are_missing() -> None:
    def mark(seq: int, created: int, received: int, rendered: int) -> dict[str, int]:
        return {"seq": seq, "createdAt": created, "receivedAt": received, "renderedAt": rendered}

    run = {
        "live_since": 1000,
        # 1 and 2 came with the first read; 3 was created before the stream was live;
        # 6 was stored but never applied.
        "stored": [1, 2, 3, 4, 5, 6, 7],
        "metrics": [
            mark(3, 990, 1001, 1010),
            mark(4, 1100, 1105, 1120),
            mark(5, 1200, 1210, 1250),
            mark(7, 1300, 1302, 1310),
        ],
    }
    values = dashboard.event_figures([run])
    assert values["events_measured"] == 3
    assert values["events_replayed"] == 1
    assert values["events_missing"] == 1
    assert values["event_created_max_ms"] == 50.0
    assert values["event_received_p50_ms"] == 15.0
    assert values["event_received_max_ms"] == 40.0


def test_the_table_shows_each_target(capsys: pytest.CaptureFixture[str]) -> None:
    values = {"load_cold_p95_ms": 420.0, "event_received_p95_ms": 75.5, "events_missing": 0}
    report = dashboard.build_report(values, 0, dashboard.TARGETS)
    assert report["event_received_p95_ms"] == {"value": 75.5, "target": 50.0, "pass": False}
    assert report["all_targets_met"]["value"] is False
    dashboard.print_table(report, argparse.Namespace(loads=2, ops=1, tasks=3))
    out = capsys.readouterr().out
    assert "≤ 1000 ms" in out and "75.50 ms" in out and "FAIL" in out
    assert out.rstrip().endswith("all targets met: NO")
