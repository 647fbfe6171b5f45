"""``python -m bench.memory``: stores, recalls and reports the recall time against its target."""

from __future__ import annotations

from tests.bench._run import run_harness


def test_the_memory_benchmark_reports_the_recall_time() -> None:
    report, _ = run_harness("bench.memory", "--entries", "60", "--owners", "3", "--queries", "10")
    assert report["entries"]["value"] == 60 and report["queries"]["value"] == 10
    assert report["recall_p50_ms"]["value"] > 0 and report["recall_p50_ms"]["target"] == 10.0
    assert report["recall_hits_mean"]["value"] > 0  # near-paraphrases of stored requests
