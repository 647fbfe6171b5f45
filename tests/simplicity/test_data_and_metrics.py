"""Labelled JSON lines (parsing, aliases, errors that name the line) and routing metrics."""

from __future__ import annotations

from pathlib import Path

import pytest

from crewchief.simplicity.data import Example, LineError, load_examples, parse_line
from crewchief.simplicity.metrics import Metrics, at_threshold, candidate_thresholds


def test_parse_line_reads_text_label_and_lang() -> None:
    ex = parse_line('{"text": "What is a monad?", "label": "fast", "lang": "en"}', 4)
    assert ex == Example(text="What is a monad?", label="fast", lang="en", line=4)


def test_parse_line_without_label() -> None:
    ex = parse_line('{"text": "Refactor the login module"}', 1)
    assert ex.label is None and ex.lang is None


@pytest.mark.parametrize(
    ("raw", "field_message"),
    [
        ('{"text": "hi", ', "not valid JSON"),
        ("not json at all", "not valid JSON"),
        ('["What is a monad?"]', "expected a JSON object"),
        ('"What is a monad?"', "expected a JSON object"),
        ('{"label": "fast"}', "text: expected a non-empty string"),
        ('{"text": "   ", "label": "fast"}', "text: expected a non-empty string"),
        ('{"text": 42}', "text: expected a non-empty string"),
        ('{"text": "hi", "label": "maybe"}', "label: expected 'fast' or 'plan', got 'maybe'"),
        ('{"text": "hi", "label": 1}', "label: expected 'fast' or 'plan', got 1"),
    ],
)
def test_parse_line_errors_name_the_line_and_field(raw: str, field_message: str) -> None:
    with pytest.raises(LineError) as info:
        parse_line(raw, 7)
    assert info.value.line == 7
    assert field_message in info.value.detail
    assert str(info.value).startswith("line 7: ")


def test_invalid_json_error_gives_the_column() -> None:
    with pytest.raises(LineError, match=r"column \d+"):
        parse_line('{"text": oops}', 1)


def test_non_object_error_names_the_type() -> None:
    with pytest.raises(LineError, match="got list"):
        parse_line('["a"]', 1)


@pytest.mark.parametrize(
    ("label", "expected"),
    [
        ("simple", "fast"),
        ("complex", "plan"),
        ("weak", "fast"),
        ("strong", "plan"),
        (" Fast ", "fast"),
        ("PLAN", "plan"),
        ("Simple", "fast"),
    ],
)
def test_label_aliases(label: str, expected: str) -> None:
    assert parse_line(f'{{"text": "hi", "label": "{label}"}}', 1).label == expected


def test_non_string_lang_is_dropped() -> None:
    assert parse_line('{"text": "hi", "lang": 3}', 1).lang is None


def _write(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_load_examples_counts_blank_lines(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "a.jsonl",
        '{"text": "What is a monad?", "label": "fast"}',
        "",
        '{"text": "Refactor the login module", "label": "complex"}',
    )
    examples = load_examples(f)
    assert [(e.line, e.label) for e in examples] == [(1, "fast"), (3, "plan")]


def test_load_examples_names_file_and_line(tmp_path: Path) -> None:
    f = _write(
        tmp_path / "bad.jsonl",
        '{"text": "What is a monad?", "label": "fast"}',
        "",
        '{"text": "Refactor it", "label": "hard"}',
    )
    with pytest.raises(ValueError) as info:
        load_examples(f)
    assert str(info.value).startswith(f"{f}:line 3: label:")


def test_load_examples_needs_labels_unless_told_otherwise(tmp_path: Path) -> None:
    f = _write(tmp_path / "u.jsonl", '{"text": "What is a monad?"}', '{"text": "fix it"}')
    with pytest.raises(ValueError, match=rf"^{f}:line 1: label"):
        load_examples(f)
    assert [e.label for e in load_examples(f, labelled=False)] == [None, None]


def test_load_examples_rejects_an_empty_file(tmp_path: Path) -> None:
    f = _write(tmp_path / "empty.jsonl", "", "  ")
    with pytest.raises(ValueError, match="no examples"):
        load_examples(f)


# 10 requests: 4 labelled fast (3 sent fast), 6 labelled plan (2 sent fast).
PAIRS = (
    [("fast", "fast")] * 3 + [("fast", "plan")] + [("plan", "fast")] * 2 + [("plan", "plan")] * 4
)


def test_metrics_on_a_hand_computed_example() -> None:
    m = Metrics.of(PAIRS)
    assert m.total == 10
    assert m.accuracy == pytest.approx(0.7)
    assert m.precision("fast") == pytest.approx(3 / 5)
    assert m.recall("fast") == pytest.approx(3 / 4)
    assert m.precision("plan") == pytest.approx(4 / 5)
    assert m.recall("plan") == pytest.approx(4 / 6)
    assert m.share("fast") == pytest.approx(0.5)
    assert m.share("plan") == pytest.approx(0.5)
    assert m.confusion == {
        ("fast", "fast"): 3,
        ("fast", "plan"): 1,
        ("plan", "fast"): 2,
        ("plan", "plan"): 4,
    }


def test_metrics_as_dict() -> None:
    d = Metrics.of(PAIRS).as_dict()
    assert d["examples"] == 10
    assert d["accuracy"] == 0.7
    assert d["routes"] == {
        "fast": {"precision": 0.6, "recall": 0.75, "share": 0.5},
        "plan": {"precision": 0.8, "recall": 0.6667, "share": 0.5},
    }
    assert d["confusion"] == {"fast": {"fast": 3, "plan": 1}, "plan": {"fast": 2, "plan": 4}}


def test_report_shows_accuracy_routes_and_confusion() -> None:
    lines = Metrics.of(PAIRS).report().splitlines()
    assert "accuracy  70.0%" in lines
    assert "examples  10" in lines
    assert "fast         60.0%   75.0%   50.0%" in lines
    assert "plan         80.0%   66.7%   50.0%" in lines
    assert "confusion (rows: label, columns: predicted)" in lines
    assert "fast         3     1" in lines
    assert "plan         2     4" in lines


def test_empty_metrics_do_not_divide_by_zero() -> None:
    m = Metrics()
    assert (m.total, m.accuracy, m.precision("fast"), m.recall("plan"), m.share("fast")) == (
        0, 0.0, 0.0, 0.0, 0.0
    )  # fmt: skip
    assert "accuracy  0.0%" in m.report()


def test_at_threshold_sends_scores_at_or_above_fast() -> None:
    scores = [0.9, 0.7, 0.69, 0.1]
    labels = ["fast", "plan", "fast", "plan"]
    m = at_threshold(scores, labels, 0.7)
    assert m.confusion == {
        ("fast", "fast"): 1,
        ("fast", "plan"): 1,
        ("plan", "fast"): 1,
        ("plan", "plan"): 1,
    }
    assert at_threshold(scores, labels, 0.0).share("fast") == 1.0
    assert at_threshold(scores, labels, 0.95).share("fast") == 0.0


def test_at_threshold_needs_one_label_per_score() -> None:
    with pytest.raises(ValueError):
        at_threshold([0.9, 0.1], ["fast"], 0.5)


def test_candidate_thresholds_cover_every_decision() -> None:
    candidates = candidate_thresholds([0.4, 0.9, 0.4, 0.1])
    assert candidates[:3] == [0.1, 0.4, 0.9]
    assert len(candidates) == 4 and candidates[3] > 1.0
