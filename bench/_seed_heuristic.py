"""A first, explainable simplicity heuristic: score 0..1 (1 = simple) plus reasons.

It looks at cheap signals only and runs in microseconds. Each signal that
fires moves the score and adds a human-readable reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_QUESTION_START = re.compile(
    r"^\s*(what|why|how|when|where|who|which|whose|is|are|was|were|does|do|did|can|could you explain|"
    r"explain|define|describe|tell me|qu[ée]|c[oó]mo|por qu[ée]|pourquoi|comment|qu'est-ce|was ist|"
    r"wie|warum|wer|welche)\b",
    re.IGNORECASE,
)
_ACTION_VERBS = re.compile(
    r"\b(implement|add|refactor|fix|build|create|migrate|write|update|remove|delete|rename|audit|"
    r"deploy|ship|integrate|optimi[sz]e|set up|setup|configure|upgrade|port|convert the|rewrite|"
    r"generate tests|add tests|debug|split|extract|move|replace|design|scaffold|"
    r"implementa|añade|arregla|corrige|crea|refactoriza|ajoute|corrige|crée|implémente|"
    r"implementiere|füge|behebe|erstelle|refaktoriere)\b",
    re.IGNORECASE,
)
_SCOPE_WORDS = re.compile(
    r"\b(every|all (the )?(files|functions|modules|tests|endpoints)|across|codebase|repository|repo|"
    r"project|module|modules|endpoint|endpoints|service|services|database schema|pipeline|"
    r"end[- ]to[- ]end|feature|system|tests?)\b",
    re.IGNORECASE,
)
_STEP_MARKERS = re.compile(
    r"(^\s*[-*\d]+[.)]?\s+|\bthen\b|\band also\b|\bafter that\b|;)", re.IGNORECASE | re.MULTILINE
)
_SHORT_GENERATION = re.compile(
    r"\b(regex|haiku|one-liner|snippet|translate|convert \d|synonym)\b", re.IGNORECASE
)


@dataclass(frozen=True, slots=True)
class Simplicity:
    score: float
    reasons: list[str] = field(default_factory=list)


def score_request(text: str) -> Simplicity:
    """Score a request: high for questions and short asks, low for multi-step work."""
    score = 0.55
    reasons: list[str] = []
    words = len(text.split())
    is_question = text.rstrip().endswith("?") or bool(_QUESTION_START.match(text))
    if is_question:
        score += 0.3
        reasons.append("phrased as a question")
    short_generation = bool(_SHORT_GENERATION.search(text))
    actions = sorted({m.group(0).lower() for m in _ACTION_VERBS.finditer(text)})
    if short_generation:
        # "Write a regex", "create a haiku": the verb asks for text, not for changes.
        actions = [
            a
            for a in actions
            if a not in ("write", "create", "generate", "crea", "crée", "erstelle")
        ]
    if actions:
        score -= 0.35 if not is_question else 0.2
        reasons.append("asks for changes: " + ", ".join(actions[:4]))
    scope = sorted({m.group(0).lower() for m in _SCOPE_WORDS.finditer(text)})
    if scope:
        score -= 0.15
        reasons.append("mentions scope: " + ", ".join(scope[:4]))
    steps = len(_STEP_MARKERS.findall(text))
    if steps >= 2:
        score -= 0.2
        reasons.append(f"describes {steps} steps")
    if short_generation:
        score += 0.2
        reasons.append("short single-shot generation")
    if words <= 6 and not actions:
        score += 0.2
        reasons.append(f"short ({words} words)")
    elif words > 60 and not is_question:
        score -= 0.15
        reasons.append(f"long request ({words} words)")
    score = round(min(1.0, max(0.0, score)), 3)
    if not reasons:
        reasons.append("no strong signal")
    return Simplicity(score, reasons)
