"""``python -m bench.embeddings``: runs offline and reports the throughput against its target."""

from __future__ import annotations

from tests.bench._run import run_harness


def test_the_embeddings_benchmark_reports_throughput_against_its_target() -> None:
    report, _ = run_harness("bench.embeddings", "--texts", "200", "--rounds", "1")
    assert report["dimensions"]["value"] == 256
    assert report["texts"]["value"] == 200
    assert report["texts_per_s"]["value"] > 0 and report["texts_per_s"]["target"] == 500.0
    assert report["load_s"]["value"] > 0
