"""Accuracy, per-route precision and recall, confusion matrices and threshold sweeps."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from crewchief.simplicity.data import LABELS


@dataclass(slots=True)
class Metrics:
    """Counts of (true label, predicted route) pairs."""

    confusion: dict[tuple[str, str], int] = field(
        default_factory=lambda: {(t, p): 0 for t in LABELS for p in LABELS}
    )

    def add(self, label: str, predicted: str) -> None:
        self.confusion[(label, predicted)] += 1

    @classmethod
    def of(cls, pairs: Iterable[tuple[str, str]]) -> Metrics:
        m = cls()
        for label, predicted in pairs:
            m.add(label, predicted)
        return m

    @property
    def total(self) -> int:
        return sum(self.confusion.values())

    @property
    def accuracy(self) -> float:
        right = sum(self.confusion[(r, r)] for r in LABELS)
        return right / self.total if self.total else 0.0

    def precision(self, route: str) -> float:
        predicted = sum(self.confusion[(t, route)] for t in LABELS)
        return self.confusion[(route, route)] / predicted if predicted else 0.0

    def recall(self, route: str) -> float:
        actual = sum(self.confusion[(route, p)] for p in LABELS)
        return self.confusion[(route, route)] / actual if actual else 0.0

    def share(self, route: str) -> float:
        """The share of requests sent down ``route``."""
        predicted = sum(self.confusion[(t, route)] for t in LABELS)
        return predicted / self.total if self.total else 0.0

    def as_dict(self) -> dict[str, object]:
        return {
            "examples": self.total,
            "accuracy": round(self.accuracy, 4),
            "routes": {
                r: {
                    "precision": round(self.precision(r), 4),
                    "recall": round(self.recall(r), 4),
                    "share": round(self.share(r), 4),
                }
                for r in LABELS
            },
            "confusion": {t: {p: self.confusion[(t, p)] for p in LABELS} for t in LABELS},
        }

    def report(self) -> str:
        """A plain-text report: accuracy, precision/recall per route, confusion matrix."""
        lines = [
            f"examples  {self.total}",
            f"accuracy  {self.accuracy:.1%}",
            "",
            f"{'route':<8}{'precision':>10}{'recall':>8}{'share':>8}",
        ]
        for r in LABELS:
            lines.append(
                f"{r:<8}{self.precision(r):>10.1%}{self.recall(r):>8.1%}{self.share(r):>8.1%}"
            )
        lines += [
            "",
            "confusion (rows: label, columns: predicted)",
            f"{'':<8}{'fast':>6}{'plan':>6}",
        ]
        for t in LABELS:
            lines.append(f"{t:<8}" + "".join(f"{self.confusion[(t, p)]:>6}" for p in LABELS))
        return "\n".join(lines)


def at_threshold(scores: Sequence[float], labels: Sequence[str], threshold: float) -> Metrics:
    """Metrics when every score at or above ``threshold`` takes the fast path."""
    return Metrics.of(
        (label, "fast" if score >= threshold else "plan")
        for score, label in zip(scores, labels, strict=True)
    )


def candidate_thresholds(scores: Iterable[float]) -> list[float]:
    """Every threshold that changes a decision: the distinct scores, plus one above all."""
    distinct = sorted(set(scores))
    return [*distinct, 1.0 + 1e-9] if distinct else [0.5]
