"""The learned part of the detector: a logistic model over sparse features.

The weights ship as ``model.json`` next to this module (written by
``python -m crewchief.simplicity.train``). Loading is a JSON read, and scoring
is one dictionary lookup per feature, so the detector needs neither numpy nor a
model runtime and starts in milliseconds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

MODEL_FILE = Path(__file__).with_name("model.json")
FORMAT = 1


def sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


@dataclass(slots=True)
class LinearModel:
    """``score = sigmoid(a · (w·x + bias) + b)``, with (a, b) fitted for calibration."""

    weights: dict[str, float]
    bias: float = 0.0
    calibration: tuple[float, float] = (1.0, 0.0)
    meta: dict[str, Any] = field(default_factory=dict)

    def margin(self, feats: dict[str, float]) -> float:
        w = self.weights
        return self.bias + sum(w.get(k, 0.0) * v for k, v in feats.items())

    def probability(self, margin: float) -> float:
        a, b = self.calibration
        return sigmoid(a * margin + b)

    def contributions(self, feats: dict[str, float]) -> dict[str, float]:
        """Each present feature's share of the calibrated margin (positive = simple)."""
        a = self.calibration[0]
        w = self.weights
        return {k: a * w[k] * v for k, v in feats.items() if k in w}

    def to_json(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "meta": self.meta,
            "bias": round(self.bias, 6),
            "calibration": [round(c, 6) for c in self.calibration],
            "weights": {k: round(v, 5) for k, v in sorted(self.weights.items())},
        }

    def save(self, path: Path = MODEL_FILE) -> None:
        text = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))
        path.write_text(text + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinearModel:
        if data.get("format") != FORMAT:
            raise ValueError(f"model format {data.get('format')!r}: expected {FORMAT}")
        a, b = data["calibration"]
        return cls(
            weights=data["weights"], bias=data["bias"], calibration=(a, b), meta=data["meta"]
        )

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> LinearModel:
        return cls.from_json(json.loads(path.read_text(encoding="utf-8")))


@lru_cache(maxsize=1)
def shipped_model() -> LinearModel:
    """The model that ships with crewchief (read once per process)."""
    return LinearModel.load()


def shipped_model_loaded() -> bool:
    """Whether :func:`shipped_model` has been read (then calling it does no I/O)."""
    return shipped_model.cache_info().currsize > 0
