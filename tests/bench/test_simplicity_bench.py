"""bench.simplicity reports what it says it measures."""

from __future__ import annotations

import json

import pytest

from bench import simplicity
from crewchief.simplicity import SimplicityDetector
from crewchief.simplicity.data import DATA_DIR, load_examples


def test_report_matches_an_independent_count(capsys: pytest.CaptureFixture[str]) -> None:
    assert simplicity.main(["--calls", "200", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)

    dev = load_examples(DATA_DIR / "dev.jsonl")
    detector = SimplicityDetector(threshold=0.7)
    right = sum(detector.decide(e.text).route == e.label for e in dev)
    assert report["dev_examples"] == len(dev)
    assert report["accuracy"] == pytest.approx(right / len(dev))
    assert set(report["accuracy_by_lang"]) == {"en", "es", "fr", "de"}
    # The detector must beat the keyword heuristic it replaced, by a wide margin.
    assert report["accuracy"] - report["seed_heuristic_accuracy"] > 0.15
    assert 0 <= report["ece"] < 0.1 and 0 <= report["brier"] < 0.1
    assert report["calls"] == 200 and 0 < report["p50_ms"] <= report["p99_ms"] <= report["max_ms"]
    assert len(report["cold_start_runs"]) == 5 and report["cold_start_s"] > 0
    assert set(report["met"]) == {"accuracy", "p50_ms", "p99_ms", "cold_start_s"}


def test_table_names_every_target(capsys: pytest.CaptureFixture[str]) -> None:
    simplicity.print_table(
        simplicity.Report(
            dev_examples=10, accuracy=0.9, accuracy_by_lang={"en": 0.9}, fast_precision=1.0,
            fast_recall=0.8, seed_heuristic_accuracy=0.7, brier=0.05, ece=0.02, calls=100,
            p50_ms=0.5, p99_ms=3.0, max_ms=4.0, cold_start_s=0.4, cold_start_runs=[0.4],
            threshold=0.7,
        )
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "90.0%" in out and "≥ 95%" in out and "≤ 2 ms" in out and "≤ 2 s" in out
    assert "all targets met: NO" in out  # accuracy misses its target
