"""``python -m bench.operations``: the latency benchmark runs end to end and reports every figure.

Only the shape of the report is checked, never the speed.
"""

from __future__ import annotations

import pytest

from tests.bench._run import run_harness

pytestmark = pytest.mark.slow  # cold-starts `crewchief --help` five times

SIDES = ("crewchief", "bare")


def test_tiny_run_reports_both_sides_and_the_like_for_like_fast_path() -> None:
    cmd = ["--n", "3", "--warmup", "1"]
    report, stderr = run_harness("bench.operations", *cmd)

    timed = [f"{s}_{side}" for s in ("fast_path", "plan5") for side in SIDES]
    timed.append("fast_path_bare_exit")
    for name in timed:
        p50, p95 = report[f"{name}_p50_ms"]["value"], report[f"{name}_p95_ms"]["value"]
        assert 0 < p50 <= p95, name
    fast = report["fast_path_crewchief_p50_ms"]["value"]
    for ratio, base in (
        ("fast_path_ratio", "fast_path_bare"),
        ("fast_path_ratio_to_bare_exit", "fast_path_bare_exit"),
    ):
        expected = fast / report[f"{base}_p50_ms"]["value"]
        assert report[ratio]["value"] == pytest.approx(expected, rel=0.01, abs=0.002), ratio
    assert report["fast_path_ratio"]["target"] == 1.5
    assert report["fast_path_ratio_to_bare_exit"]["target"] is None  # informational
    assert report["peak_rss_mb"]["value"] > 0
    assert "error" not in report["cli_help_cold_start_s"]
    checked = [m["pass"] for k, m in report.items() if k != "all_targets_met"]
    assert report["all_targets_met"]["value"] is all(p is not False for p in checked)
