"""Pick the routing threshold for a target fast-path share or a target fast-path precision.

Routers calibrate the same way: score a sample of real traffic, then choose
the threshold at which the wanted share of requests goes to the cheap route
(or at which the cheap route is right often enough).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from crewchief._atomic import atomic_write
from crewchief.simplicity.metrics import Metrics, at_threshold, candidate_thresholds


class CalibrationError(ValueError):
    """The target cannot be met on this sample (the message says why)."""


@dataclass(frozen=True, slots=True)
class Calibration:
    threshold: float
    fast_share: float
    metrics: Metrics | None  # None when the sample has no labels
    target: str


def _share(scores: Sequence[float], threshold: float) -> float:
    return sum(s >= threshold for s in scores) / len(scores)


def for_fast_share(
    scores: Sequence[float], share: float, labels: Sequence[str] | None = None
) -> Calibration:
    """The lowest threshold that sends at most ``share`` of the sample down the fast path."""
    if not 0.0 <= share <= 1.0:
        raise CalibrationError(f"fast share: expected a number in [0, 1], got {share}")
    if not scores:
        raise CalibrationError("no requests to calibrate on")
    chosen = next(t for t in candidate_thresholds(scores) if _share(scores, t) <= share)
    threshold = _round_up(chosen, scores)
    if _share(scores, threshold) > share:  # scores of exactly 1.0 go fast at any threshold
        raise CalibrationError(
            f"no threshold in [0, 1] sends at most {share:.1%} fast: "
            f"{sum(s >= 1.0 for s in scores)} of {len(scores)} requests score 1.0"
        )
    metrics = at_threshold(scores, labels, threshold) if labels else None
    return Calibration(threshold, _share(scores, threshold), metrics, f"fast share ≤ {share:.1%}")


def for_precision(scores: Sequence[float], labels: Sequence[str], precision: float) -> Calibration:
    """The lowest threshold at which requests sent fast are really simple ``precision`` of the time.

    The lowest such threshold sends the most traffic down the fast path.
    """
    if not 0.0 < precision <= 1.0:
        raise CalibrationError(f"precision: expected a number in (0, 1], got {precision}")
    if not labels or len(labels) != len(scores):
        raise CalibrationError("precision targets need a label ('fast' or 'plan') on every line")
    for t in candidate_thresholds(scores):
        m = at_threshold(scores, labels, t)
        if m.share("fast") > 0 and m.precision("fast") >= precision:
            threshold = _round_up(t, scores)
            metrics = at_threshold(scores, labels, threshold)
            return Calibration(
                threshold, metrics.share("fast"), metrics, f"fast precision ≥ {precision:.1%}"
            )
    raise CalibrationError(
        f"no threshold reaches a fast-path precision of {precision:.1%} on this sample"
    )


def _round_up(threshold: float, scores: Sequence[float]) -> float:
    """A short number that makes the same decisions as ``threshold`` on this sample."""
    if threshold > 1.0:
        return 1.0
    below = max((s for s in scores if s < threshold), default=0.0)
    for digits in (2, 3, 4):
        candidate = round(threshold, digits)
        if below < candidate <= threshold:
            return candidate
    return threshold


def sweep(
    scores: Sequence[float], labels: Sequence[str] | None, points: Sequence[float]
) -> list[tuple[float, float, Metrics | None]]:
    """(threshold, fast share, metrics) at each of ``points``."""
    return [
        (t, _share(scores, t), at_threshold(scores, labels, t) if labels else None) for t in points
    ]


_KEY = re.compile(r"^[ \t]*simplicity_threshold[ \t]*=.*$", re.MULTILINE)
_TABLE = re.compile(r"^[ \t]*\[", re.MULTILINE)


def write_threshold(path: Path, threshold: float) -> None:
    """Set ``simplicity_threshold`` in a TOML file, keeping everything else as it is."""
    line = f"simplicity_threshold = {threshold:g}"
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    table = _TABLE.search(text)
    top = text[: table.start()] if table else text
    if _KEY.search(top):
        text = _KEY.sub(line, top, count=1) + text[len(top) :]
    else:  # top-level keys must come before the first [table]
        at = table.start() if table else len(text)
        sep = "" if at == 0 or text[:at].endswith("\n") else "\n"
        text = text[:at] + sep + line + "\n" + ("\n" if table else "") + text[at:]
    atomic_write(path, text.encode("utf-8"))
