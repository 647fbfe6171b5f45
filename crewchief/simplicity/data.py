"""Labelled requests as JSON lines: ``{"text": ..., "label": "fast"|"plan", "lang": ...}``."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

LABELS = ("fast", "plan")
# Names other routers use for the same two classes.
_LABEL_ALIASES = {"simple": "fast", "complex": "plan", "weak": "fast", "strong": "plan"}
# The training and development sets live in the source tree, not in the wheel.
DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "simplicity"


class LineError(ValueError):
    """One input line that is not a usable request (names the line and the field)."""

    def __init__(self, line: int, message: str):
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.detail = message


@dataclass(frozen=True, slots=True)
class Example:
    text: str
    label: str | None = None
    lang: str | None = None
    line: int = 0


def parse_line(raw: str, line: int) -> Example:
    """Parse one JSON line; raise :class:`LineError` saying which field is wrong."""
    try:
        item = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise LineError(line, f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(item, dict):
        raise LineError(
            line, f'expected a JSON object like {{"text": ...}}, got {type(item).__name__}'
        )
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise LineError(line, "text: expected a non-empty string")
    label = item.get("label")
    if label is not None:
        if not isinstance(label, str) or label.strip().lower() not in (*LABELS, *_LABEL_ALIASES):
            raise LineError(line, f"label: expected 'fast' or 'plan', got {label!r}")
        label = label.strip().lower()
        label = _LABEL_ALIASES.get(label, label)
    lang = item.get("lang")
    return Example(text=text, label=label, lang=lang if isinstance(lang, str) else None, line=line)


def iter_lines(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """Numbered non-blank lines (line numbers count blank lines too)."""
    for number, raw in enumerate(lines, start=1):
        if raw.strip():
            yield number, raw


def load_examples(path: Path, *, labelled: bool = True) -> list[Example]:
    """Every example in a JSONL file; any bad line is an error naming file and line."""
    examples = []
    with path.open(encoding="utf-8") as fh:
        for number, raw in iter_lines(fh):
            try:
                ex = parse_line(raw, number)
            except LineError as exc:
                raise ValueError(f"{path}:{exc}") from None
            if labelled and ex.label is None:
                raise ValueError(f"{path}:line {number}: label: expected 'fast' or 'plan'")
            examples.append(ex)
    if not examples:
        raise ValueError(f"{path}: no examples")
    return examples
