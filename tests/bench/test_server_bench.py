"""``python -m bench.server``: the REST service benchmark runs end to end and cleans up after itself.

Only the shape of the report and the error counts are checked, never the speed.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from bench import server
from tests.bench._run import run_harness

pytestmark = pytest.mark.slow  # starts two `crewchief serve` processes


def test_tiny_run_reports_every_measurement_and_stops_its_servers() -> None:
    cmd = ["--n", "5", "--warmup", "1", "--clients", "2", "--seconds", "1", "--streams", "10"]
    report, stderr = run_harness("bench.server", *cmd)

    assert set(report) == {*server.ROWS, "all_targets_met"}
    for key in server.ROWS:
        m = report[key]
        assert set(m) == {"value", "target", "pass"}, key
        assert isinstance(m["value"], int | float) and not isinstance(m["value"], bool), (key, m)
        assert m["value"] >= 0, (key, m)
    for scenario in ("latency", "throughput", "streams"):
        assert report[f"{scenario}_errors"]["value"] == 0, stderr[-3000:]
    assert report["latency_operations"]["value"] == 5
    assert report["throughput_operations"]["value"] >= 2
    assert report["streams_connections_held"] == {"value": 10, "target": 10, "pass": True}
    # Every stream got at least its stored events and its token deltas.
    assert report["streams_events"]["value"] >= 10 * 5
    overall = all(report[k]["pass"] is not False for k in server.ROWS)
    assert report["all_targets_met"]["value"] is overall

    # Both servers were started, reported, and stopped by the harness.
    pids = [int(p) for p in re.findall(r"server pid (\d+)", stderr)]
    assert len(pids) == 2
    for pid in pids:
        assert not _serving(pid), f"server {pid} still runs"


def _serving(pid: int) -> bool:
    """Whether ``pid`` is (still) a ``crewchief serve`` process."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return b"crewchief.cli" in cmdline and b"serve" in cmdline and state != "Z"


def test_report_and_table_show_each_target(
    capsys: pytest.CaptureFixture[str],
) -> None:
    values = {
        "latency_first_event_p50_ms": 4.2,
        "latency_terminal_p50_ms": 61.0,
        "latency_errors": 0,
        "streams_connections_held": 7,
    }
    report = server.build_report(values, streams=8)
    assert report["latency_first_event_p50_ms"]["pass"] is True
    assert report["latency_terminal_p50_ms"] == {"value": 61.0, "target": 50.0, "pass": False}
    assert report["streams_connections_held"]["pass"] is False  # 7 of 8 held at once
    assert report["all_targets_met"]["value"] is False

    args = argparse.Namespace(n=3, clients=2, seconds=1.0, streams=8)
    server.print_table(report, args)
    out = capsys.readouterr().out
    assert "≤ 20 ms" in out and "≤ 50 ms" in out and "≥ 8" in out
    assert "61.00 ms" in out and "FAIL" in out
    assert out.rstrip().endswith("all targets met: NO")
