"""Picking the fast-path threshold for a target share or precision, and saving it to TOML."""

from __future__ import annotations

from pathlib import Path

import pytest

from crewchief.config import load_settings
from crewchief.simplicity.calibrate import (
    CalibrationError,
    for_fast_share,
    for_precision,
    write_threshold,
)
from crewchief.simplicity.metrics import at_threshold

SCORES = [0.1, 0.2, 0.5, 0.8, 0.9]


def _fast_share(scores: list[float], threshold: float) -> float:
    return sum(s >= threshold for s in scores) / len(scores)


@pytest.mark.parametrize(
    ("share", "threshold", "reported"),
    [(0.4, 0.8, 0.4), (0.5, 0.8, 0.4), (0.6, 0.5, 0.6), (1.0, 0.1, 1.0), (0.2, 0.9, 0.2)],
)
def test_fast_share_picks_the_lowest_threshold_within_target(
    share: float, threshold: float, reported: float
) -> None:
    result = for_fast_share(SCORES, share)
    assert result.threshold == threshold
    assert result.fast_share == pytest.approx(reported)
    assert _fast_share(SCORES, result.threshold) == pytest.approx(result.fast_share)
    assert result.metrics is None
    assert "fast share" in result.target


def test_fast_share_rounds_to_a_short_threshold_with_the_same_decisions() -> None:
    scores = [0.1234, 0.4567, 0.8123, 0.9321]
    result = for_fast_share(scores, 0.5)
    assert result.threshold == 0.81
    assert _fast_share(scores, result.threshold) == 0.5


def test_fast_share_reports_metrics_when_labelled() -> None:
    labels = ["plan", "plan", "fast", "fast", "fast"]
    result = for_fast_share(SCORES, 0.4, labels)
    assert result.metrics is not None
    assert result.metrics.precision("fast") == 1.0
    assert result.metrics.recall("fast") == pytest.approx(2 / 3)


def test_fast_share_zero_sends_nothing_fast_even_with_perfect_scores() -> None:
    # Scores are rounded to 4 digits, so very simple requests score exactly 1.0.
    scores = [1.0, 0.9, 0.2]
    try:
        result = for_fast_share(scores, 0.0)
    except CalibrationError:
        return  # refusing is acceptable; silently missing the target is not
    assert result.fast_share <= 0.0
    assert _fast_share(scores, result.threshold) <= 0.0


@pytest.mark.parametrize("share", [-0.1, 1.5])
def test_fast_share_target_must_be_a_share(share: float) -> None:
    with pytest.raises(CalibrationError, match=r"fast share: expected a number in \[0, 1\]"):
        for_fast_share(SCORES, share)


def test_fast_share_needs_requests() -> None:
    with pytest.raises(CalibrationError, match="no requests"):
        for_fast_share([], 0.5)


P_SCORES = [0.95, 0.9, 0.8, 0.7234, 0.4, 0.2]
P_LABELS = ["fast", "fast", "plan", "fast", "plan", "plan"]


@pytest.mark.parametrize(
    ("precision", "threshold", "share"),
    [(0.5, 0.2, 1.0), (0.75, 0.72, 4 / 6), (0.9, 0.9, 2 / 6), (1.0, 0.9, 2 / 6)],
)
def test_precision_picks_the_lowest_threshold_meeting_it(
    precision: float, threshold: float, share: float
) -> None:
    result = for_precision(P_SCORES, P_LABELS, precision)
    assert result.threshold == threshold
    assert result.fast_share == pytest.approx(share)
    assert result.metrics is not None
    assert result.metrics.precision("fast") >= precision
    # Any lower distinct score as threshold falls short of the target.
    lower = [s for s in P_SCORES if s < result.threshold]
    if lower:
        assert at_threshold(P_SCORES, P_LABELS, max(lower)).precision("fast") < precision


def test_precision_that_cannot_be_met_is_an_error() -> None:
    with pytest.raises(
        CalibrationError, match=r"no threshold reaches a fast-path precision of 100"
    ):
        for_precision([0.9, 0.8, 0.1], ["plan", "plan", "fast"], 1.0)


@pytest.mark.parametrize("labels", [None, [], ["fast"]])
def test_precision_needs_a_label_per_request(labels: list[str] | None) -> None:
    with pytest.raises(CalibrationError, match="need a label"):
        for_precision([0.9, 0.1], labels, 0.9)  # type: ignore[arg-type]


@pytest.mark.parametrize("precision", [0.0, -0.5, 1.01])
def test_precision_target_must_be_in_range(precision: float) -> None:
    with pytest.raises(CalibrationError, match=r"precision: expected a number in \(0, 1\]"):
        for_precision(P_SCORES, P_LABELS, precision)


TABLES = '[models.orchestrator]\nmodel = "fake:default"\n\n[tiers.deep]\neffort = "high"\n'


def test_write_threshold_creates_the_file(tmp_path: Path) -> None:
    path = tmp_path / "crewchief.toml"
    write_threshold(path, 0.55)
    assert path.read_text() == "simplicity_threshold = 0.55\n"
    assert load_settings(path, env={}).simplicity_threshold == 0.55


def test_write_threshold_replaces_only_the_existing_key(tmp_path: Path) -> None:
    path = tmp_path / "crewchief.toml"
    before = "max_plan_tasks = 5\n\n# picked by crewchief calibrate\nsimplicity_threshold = 0.7\n"
    path.write_text(before + "\n" + TABLES)
    write_threshold(path, 0.62)
    assert path.read_text() == before.replace("0.7", "0.62") + "\n" + TABLES
    settings = load_settings(path, env={})
    assert settings.simplicity_threshold == 0.62
    assert settings.max_plan_tasks == 5


def test_write_threshold_replacing_keeps_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "crewchief.toml"
    path.write_text("max_plan_tasks = 5\n\nsimplicity_threshold = 0.7\n\n" + TABLES)
    write_threshold(path, 0.62)
    assert path.read_text() == "max_plan_tasks = 5\n\nsimplicity_threshold = 0.62\n\n" + TABLES


def test_write_threshold_inserts_before_the_first_table(tmp_path: Path) -> None:
    path = tmp_path / "crewchief.toml"
    top = "# my settings\nmax_plan_tasks = 5\n"
    path.write_text(top + TABLES)
    write_threshold(path, 0.8)
    text = path.read_text()
    assert text.startswith(top)
    assert text.endswith(TABLES)
    middle = text[len(top) : len(text) - len(TABLES)]
    assert middle.strip() == "simplicity_threshold = 0.8"
    settings = load_settings(path, env={})
    assert settings.simplicity_threshold == 0.8
    assert settings.max_plan_tasks == 5
    assert settings.tiers["deep"].effort == "high"


def test_write_threshold_into_a_file_of_only_tables(tmp_path: Path) -> None:
    path = tmp_path / "crewchief.toml"
    path.write_text(TABLES)
    write_threshold(path, 0.45)
    text = path.read_text()
    assert text.startswith("simplicity_threshold = 0.45\n")
    assert text.endswith(TABLES)
    assert load_settings(path, env={}).simplicity_threshold == 0.45


def test_write_threshold_ignores_a_commented_out_key(tmp_path: Path) -> None:
    path = tmp_path / "crewchief.toml"
    path.write_text("# simplicity_threshold = 0.9\nmax_plan_tasks = 5")  # no final newline
    write_threshold(path, 0.65)
    assert path.read_text() == (
        "# simplicity_threshold = 0.9\nmax_plan_tasks = 5\nsimplicity_threshold = 0.65\n"
    )
    assert load_settings(path, env={}).simplicity_threshold == 0.65
