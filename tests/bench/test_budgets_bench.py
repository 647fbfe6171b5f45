"""``python -m bench.budgets``: the budget overhead benchmark runs end to end, reports every
row and cleans up after itself.

Only the shape of the report, the error counts and the sanity of the figures are checked,
never the speed.
"""

from __future__ import annotations

import argparse
import re

import pytest

from bench import budgets
from tests.bench._run import run_harness, running

pytestmark = pytest.mark.slow  # starts the fake upstream and `crewchief serve`

TINY = ["--n", "10", "--warmup", "2", "--iterations", "40", "--pg-n", "16", "--ops", "2"]


def test_tiny_run_reports_every_row_and_stops_its_processes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    report, stderr = run_harness("bench.budgets", *TINY)

    pg = report["pg_status"]["value"] == "run"  # without PostgreSQL it says why, and goes on
    expected = {k for k in budgets.ROWS if pg or not k.startswith("pg_") or k == "pg_status"}
    assert set(report) == expected | {"all_targets_met"}
    assert report["gateway_errors"]["value"] == 0, stderr[-3000:]
    assert report["gateway_requests"]["value"] == 2 * 2 * 10  # 2 keys × (plain + streamed)
    for name in ("limits", "tokens", "reserve_settle", "gateway_budget"):
        p50, p95, p99 = (report[f"direct_{name}_p{q}_ms"]["value"] for q in (50, 95, 99))
        assert 0 < p50 <= p95 <= p99, name
    assert report["direct_long_tokens_count"]["value"] > 10 * report["direct_tokens_count"]["value"]
    # Enforcement for a key without a budget is the plan lookup alone.
    free, paid = (report[f"direct_gateway_{k}_p50_ms"]["value"] for k in ("free", "budget"))
    assert report["direct_gateway_overhead_p50_ms"]["value"] == pytest.approx(paid - free, abs=1e-5)
    assert report["direct_gateway_budget_p50_ms"]["target"] == 0.3
    if pg:
        assert report["pg_held_after_usd"]["value"] == 0  # every reservation was settled
        assert (
            0 < report["pg_sequential_p50_ms"]["value"] <= report["pg_sequential_p95_ms"]["value"]
        )
        assert report["pg_concurrent_per_s"]["value"] > 0
    # The fast path makes one model call; plan+5 plans, runs 5 tasks and synthesizes.
    assert report["op_fast_calls"]["value"] == 1 and report["op_plan5_calls"]["value"] == 7
    fast, plan = (report[f"op_{s}_prompt_tokens"]["value"] for s in ("fast", "plan5"))
    assert 0 < fast < plan
    for op in ("op_fast", "op_plan5"):
        overhead = report[f"{op}_overhead_p50_ms"]["value"]
        per_call = overhead / report[f"{op}_calls"]["value"]
        assert report[f"{op}_overhead_per_call_ms"]["value"] == pytest.approx(per_call, abs=1e-5)
    overall = all(m["pass"] is not False for k, m in report.items() if k != "all_targets_met")
    assert report["all_targets_met"]["value"] is overall

    # The upstream and the gateway were started, reported, and stopped by the harness.
    pids = [int(p) for p in re.findall(r"(?:upstream|gateway) pid (\d+)", stderr)]
    assert len(pids) == 2, stderr[-3000:]
    for pid in pids:
        assert not running(pid), f"process {pid} still runs"

    args = argparse.Namespace(n=10, iterations=40, pg_n=16, ops=2)
    budgets.print_table(report, args)
    table = capsys.readouterr().out
    for key, (_, label, _) in budgets.ROWS.items():
        if key in report:
            assert label.strip() in table, label
    assert "≤ 0.3 ms" in table and table.rstrip().endswith(
        f"all targets met: {'yes' if overall else 'NO'}"
    )
