"""Decide how much machinery a request deserves: the fast path or a plan.

``SimplicityDetector().decide(text)`` returns a :class:`Decision` with a score in
[0, 1] (1 = simple), the route, the tier and the reasons. Importing this package
is cheap: the model is read on first use.
"""

from crewchief.simplicity.detector import (
    DEFAULT_DEEP_BELOW,
    DEFAULT_THRESHOLD,
    TIERS,
    Decision,
    SimplicityDetector,
    decide,
    load_detector,
)

__all__ = [
    "DEFAULT_DEEP_BELOW",
    "DEFAULT_THRESHOLD",
    "TIERS",
    "Decision",
    "SimplicityDetector",
    "decide",
    "load_detector",
]
