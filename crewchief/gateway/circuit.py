"""A circuit breaker per model: stop sending requests to a model that keeps failing.

After ``threshold`` failures in a row a model's circuit opens: requests skip it (on to
its fallbacks, or a fast 503 when it has none) for ``cooldown`` seconds. Then one
request is let through (half-open): its success closes the circuit, its failure opens
it for another cooldown. This holds for a model with a single deployment too, so an
outage costs one trial request per cooldown instead of a retry on every request.

Each process keeps its own circuits: an API instance learns about an outage from its
own requests.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

THRESHOLD = 3
COOLDOWN_S = 30.0


@dataclass
class _Circuit:
    failures: int = 0
    opened_at: float | None = None
    trial: bool = False  # a half-open trial request is under way


class Breakers:
    """The circuits of every model this process calls."""

    def __init__(self, threshold: int = THRESHOLD, cooldown: float = COOLDOWN_S):
        self.threshold = threshold
        self.cooldown = cooldown
        self._circuits: dict[str, _Circuit] = {}

    def state(self, model: str) -> str:
        """``closed``, ``open`` or ``half_open``."""
        circuit = self._circuits.get(model)
        if circuit is None or circuit.opened_at is None:
            return "closed"
        return "open" if self.wait(model) > 0 or circuit.trial else "half_open"

    def wait(self, model: str) -> float:
        """Seconds until an open circuit lets a trial through (0 when it would now)."""
        circuit = self._circuits.get(model)
        if circuit is None or circuit.opened_at is None:
            return 0.0
        return max(0.0, circuit.opened_at + self.cooldown - time.monotonic())

    def allow(self, model: str) -> bool:
        """Whether a request may go to ``model`` now; a half-open circuit lets one through."""
        circuit = self._circuits.get(model)
        if circuit is None or circuit.opened_at is None:
            return True
        if circuit.trial or self.wait(model) > 0:
            return False
        circuit.trial = True
        return True

    def success(self, model: str) -> None:
        self._circuits.pop(model, None)

    def failure(self, model: str) -> None:
        circuit = self._circuits.setdefault(model, _Circuit())
        circuit.failures += 1
        if circuit.trial or circuit.failures >= self.threshold:
            circuit.opened_at = time.monotonic()
            circuit.trial = False

    def release(self, model: str) -> None:
        """A trial request ended without a verdict (the client left): let another try."""
        circuit = self._circuits.get(model)
        if circuit is not None:
            circuit.trial = False
