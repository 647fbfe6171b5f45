"""``python -m bench.gateway``: the gateway benchmark runs end to end and cleans up after itself.

Only the shape of the report, the error counts and the sanity of the figures are checked,
never the speed.
"""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

import pytest

from bench import gateway
from tests.bench._run import run_harness, running

ROOT = Path(__file__).resolve().parents[2]
TINY = ["--n", "30", "--warmup", "3", "--clients", "5", "--seconds", "1"]
TINY += ["--memory-requests", "200"]


@pytest.mark.slow  # starts the fake upstream and two `crewchief serve` processes
def test_tiny_run_reports_every_figure_and_stops_its_processes() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CREWCHIEF_BENCH_LITELLM"}
    report, stderr = run_harness("bench.gateway", *TINY, env=env)

    args = argparse.Namespace(memory_requests=200, clients=5)
    litellm_figures = {k for k in gateway.rows(args) if "litellm" in k and k != "litellm_status"}
    assert set(report) == set(gateway.rows(args)) - litellm_figures | {"all_targets_met"}
    assert report["litellm_status"]["value"].startswith("not run: no --litellm")
    for key, m in report.items():
        assert set(m) == {"value", "target", "pass"}, key
        if key in ("litellm_status", "all_targets_met"):
            continue
        value = m["value"]
        assert isinstance(value, int | float) and not isinstance(value, bool), (key, m)
        if key.endswith("_errors"):
            assert value == 0, (key, stderr[-3000:])
        elif (key.startswith("overhead_") and "p99" in key) or key == "memory_growth_mb":
            pass  # a difference of two figures: any sign
        elif key.endswith("_pct"):
            assert 0 <= value <= 100, (key, m)
        else:
            assert value > 0, (key, m)

    for name in ("direct", "gateway"):
        p = f"latency_{name}"
        assert report[f"{p}_requests"]["value"] == 2 * 30  # 30 rounds, one of each kind
        for figure in ("", "ttfb_"):
            assert report[f"{p}_{figure}p99_ms"]["value"] >= report[f"{p}_{figure}p50_ms"]["value"]
        # the first content chunk comes before the end of the stream
        assert report[f"{p}_ttfb_p50_ms"]["value"] <= report[f"{p}_stream_p50_ms"]["value"]
    assert report["throughput_p99_ms"]["value"] >= report["throughput_p50_ms"]["value"]
    assert report["memory_requests"]["value"] == 200
    first, last = report["memory_rss_first_mb"]["value"], report["memory_rss_last_mb"]["value"]
    assert report["memory_growth_mb"]["value"] == pytest.approx(last - first, abs=0.01)
    for key in gateway.TARGETS:
        assert report[key]["target"] == gateway.TARGETS[key][1], key
    overall = all(m["pass"] is not False for k, m in report.items() if k != "all_targets_met")
    assert report["all_targets_met"]["value"] is overall

    # The upstream and both gateways were started, reported, and stopped by the harness.
    pids = [int(p) for p in re.findall(r"(?:upstream|gateway) pid (\d+)", stderr)]
    assert len(pids) == 3, stderr[-3000:]
    for pid in pids:
        assert not running(pid), f"process {pid} still runs"


def test_scenario_choice_and_missing_litellm() -> None:
    parse = gateway._scenarios
    with pytest.raises(argparse.ArgumentTypeError):
        parse("gateway,bogus")

    def chosen(only: str | None, skip: str | None) -> set[str]:
        args = argparse.Namespace(only=only and parse(only), skip=skip and parse(skip))
        return gateway.wanted(args)

    assert chosen(None, "memory") == set(gateway.SCENARIOS) - {"memory"}
    assert chosen("gateway", None) == {"direct", "gateway"}  # the overhead needs direct
    assert chosen("memory,throughput", None) == {"memory", "throughput"}
    assert gateway.litellm_problem(None).startswith("not run")
    assert "not an executable" in gateway.litellm_problem(str(ROOT))

    values = {"latency_direct_p50_ms": 0.25, "latency_gateway_p50_ms": 1.5}
    values["latency_direct_p99_ms"], values["latency_gateway_p99_ms"] = 1.0, None
    out = gateway.overheads(values)
    assert out["overhead_gateway_p50_ms"] == pytest.approx(1.25)
    assert out["overhead_gateway_p99_ms"] is None  # no gateway figure: no overhead
    assert "overhead_litellm_p50_ms" not in out  # LiteLLM was not run


@pytest.mark.local_model
def test_the_rewrite_benchmark_times_the_engineer_and_replays_from_the_cache() -> None:
    report, stderr = run_harness("bench.gateway_rewrite", "--requests", "2")
    assert report["rewrite_errors"]["value"] == 0, stderr[-3000:]
    # The model samples (temperature 0.3): a rewrite may run into its bound and be dropped.
    applied, cut = report["rewrite_applied"]["value"], report["rewrite_cut_short"]["value"]
    assert applied + cut == 2, stderr[-3000:]
    if applied:
        assert report["rewrite_engineer_p50_ms"]["value"] > 0
    else:
        assert report["rewrite_cut_short_max_ms"]["value"] > 0
    # Every rewrite that was made comes from the cache when the conversation is replayed.
    assert report["replay_hit_rate_pct"]["value"] == 100.0 * applied / 2
