"""``python -m bench.semantic_cache``: evaluates a threshold on the shipped labelled set."""

from __future__ import annotations

import json

from tests.bench._run import run_harness


def test_the_semantic_cache_benchmark_scores_the_shipped_set(tmp_path) -> None:
    report, _ = run_harness("bench.semantic_cache")
    assert report["pairs"]["value"].startswith("406 (197 / 209)")
    assert report["precision_at_threshold"]["target"] == 0.99
    # A small set of its own: two paraphrases (one identical) and one near miss.
    mine = tmp_path / "pairs.jsonl"
    rows = [
        {"a": "Sort a list", "b": "Sort a list", "label": "same", "kind": "identical"},
        {"a": "Reverse a list in Python", "b": "reverse a list in python", "label": "same", "kind": "casing"},
        {"a": "Add a column", "b": "Drop a column", "label": "different", "kind": "negation"},
    ]  # fmt: skip
    mine.write_text("\n".join(json.dumps(r) for r in rows))
    small, _ = run_harness("bench.semantic_cache", "--file", str(mine), "--threshold", "0.999")
    assert small["recall_at_threshold"]["value"] >= 0.5
    assert small["false_hits_at_threshold"]["value"] == 0
