"""One reasoning-effort setting, mapped by each provider adapter to its own knob."""

from __future__ import annotations

from typing import Literal

Effort = Literal["low", "medium", "high"]

_LOW = {"minimal", "quick", "low", "none", "fast"}
_HIGH = {"high", "thorough", "deep", "max", "maximum"}


def normalize_effort(value: str | None) -> Effort:
    """Map any user-facing effort word to ``low``, ``medium`` or ``high``.

    ``minimal``/``quick`` mean low, ``high``/``thorough``/``deep`` mean high and
    anything else (including ``None``) means medium.
    """
    word = (value or "").strip().lower()
    if word in _LOW:
        return "low"
    if word in _HIGH:
        return "high"
    return "medium"


# Gemini 2.5 models take a token budget for thinking rather than a level.
GEMINI_THINKING_BUDGET: dict[Effort, int] = {"low": 512, "medium": 4096, "high": 16384}


def openai_supports_effort(model: str) -> bool:
    """OpenAI rejects ``reasoning_effort`` for non-reasoning models; guess from the name."""
    name = model.lower().split("/")[-1]
    return name.startswith(("o1", "o3", "o4", "gpt-5", "gpt-oss"))
