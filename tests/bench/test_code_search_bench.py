"""``python -m bench.code_search``: retrieval quality on the labelled set, and speed."""

from __future__ import annotations

import json
import subprocess
import sys

from bench.code_search import LABELS, load_labels, score
from tests.bench._run import ROOT, run_harness


def test_the_labelled_set_is_large_and_its_line_spans_match_the_installed_code() -> None:
    labels = load_labels()
    assert len(labels) >= 100
    assert {item["kind"] for item in labels} == {"behaviour", "concept", "identifier", "error"}
    check = subprocess.run(
        [sys.executable, str(LABELS.parent / "_check_code_search_labels.py")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr


class _Hit:
    def __init__(self, path: str, start: int, end: int):
        self.path, self.start, self.end = path, start, end


def test_scores_count_each_labelled_definition_once_and_reward_early_hits() -> None:
    labels = [{"path": "a.py", "lines": [10, 20]}, {"path": "b.py", "lines": [1, 5]}]
    both_first = [_Hit("a.py", 12, 14), _Hit("b.py", 1, 3), _Hit("a.py", 15, 16)]
    assert score(both_first, labels) == (1.0, 1.0)
    late = [_Hit("c.py", 1, 9)] * 3 + [_Hit("a.py", 18, 30), _Hit("a.py", 10, 11)]
    recall, ndcg = score(late, labels)
    assert recall == 0.5 and 0 < ndcg < 0.5
    assert score([_Hit("a.py", 21, 30), _Hit("b.py", 6, 9)], labels) == (0.0, 0.0)


def test_the_benchmark_reports_quality_and_speed_against_the_targets() -> None:
    report, _ = run_harness("bench.code_search", "--chunks", "300", "--queries", "5")
    assert report["queries_labelled"]["value"] >= 100
    for mode in ("bm25", "vector", "hybrid"):
        assert 0 < report[f"{mode}_recall"]["value"] <= 1
        assert 0 < report[f"{mode}_ndcg"]["value"] <= 1
    assert report["hybrid_recall"]["target"] == 0.8 and report["hybrid_recall"]["pass"]
    assert report["hybrid_beats_both"]["value"] == 1
    assert report["speed_chunks"]["value"] >= 300
    assert report["query_p50_ms"]["target"] == 20.0 and report["query_p50_ms"]["value"] > 0
    assert report["refresh_one_file_ms"]["value"] > 0
    json.dumps(report)
