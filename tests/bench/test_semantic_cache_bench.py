"""``python -m bench.semantic_cache``: the threshold is chosen on one half of the shipped
labelled set and checked on the other, and the gateway's default follows the figures."""

from __future__ import annotations

import json

from crewchief.config import GatewaySettings
from tests.bench._run import run_harness, run_module


def test_the_threshold_is_chosen_on_one_half_and_checked_on_the_other() -> None:
    report, _ = run_harness("bench.semantic_cache")
    assert report["pairs"]["value"] == "606 (297 / 309)"
    assert report["split"]["value"] == "326 / 280"
    assert report["heldout_precision"]["target"] == 0.99
    chosen = report["chosen_threshold"]["value"]
    assert chosen is not None and report["calibration_precision"]["value"] >= 0.99
    # By similarity alone the same threshold answers near misses by the dozen.
    assert report["unguarded_false_hits"]["value"] > 10 * max(1, report["false_hits"]["value"])
    assert report["guard_refuses_near_misses"]["value"] > 0.9
    # The default follows the measurement: the cache is on only when the held-out half,
    # which played no part in the choice, confirms it, and then at the chosen threshold.
    confirmed = report["heldout_precision"]["pass"] and report["heldout_recall"]["pass"]
    gateway = GatewaySettings()
    assert gateway.semantic_cache is bool(confirmed)
    if gateway.semantic_cache:
        assert gateway.semantic_threshold == chosen
        assert report["heldout_precision"]["value"] >= 0.99
        assert report["configured_heldout_precision"]["value"] >= 0.99


def test_the_table_shows_each_half_and_the_whole_set() -> None:
    proc = run_module("bench.semantic_cache")
    for row in (
        "calibration / held-out pairs",
        "lowest threshold with precision ≥ 0.99",
        "precision at the chosen threshold",
        "recall at the chosen threshold",
        "near misses refused (any similarity)",
        "one lookup: request + 4 candidates, mean",
    ):
        assert row in proc.stdout
    for scenario in ("calibration", "held-out", "whole set", "similarity only", "guard"):
        assert f"│ {scenario}" in proc.stdout
    assert "all targets met:" in proc.stdout


def test_a_set_of_ones_own_is_scored_the_same_way(tmp_path) -> None:
    mine = tmp_path / "pairs.jsonl"
    rows = [
        {"a": "Sort a list", "b": "Sort a list", "label": "same", "kind": "identical"},
        {"a": "Reverse a list in Python", "b": "reverse a list in python", "label": "same", "kind": "casing"},
        {"a": "Add a column", "b": "Drop a column", "label": "different", "kind": "negation"},
    ]  # fmt: skip
    mine.write_text("\n".join(json.dumps(r) for r in rows))
    small, _ = run_harness("bench.semantic_cache", "--file", str(mine), "--threshold", "0.5")
    assert small["pairs"]["value"] == "3 (2 / 1)"
    assert small["configured_precision"]["value"] == 1.0
    assert small["configured_recall"]["value"] == 1.0
    assert small["guard_refuses_near_misses"]["value"] == 1.0
    assert small["guard_refuses_paraphrases"]["value"] == 0.0
