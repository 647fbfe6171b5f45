"""Infer the role of a gateway request that names none, with the reasons.

``infer_role(system, request)`` reads the request's system prompt (often an editor agent's
own: an architect, code, ask or debug mode, Cline, Continue, aider) and its latest user
message, and returns an :class:`Inference`: one of :data:`~crewchief.gateway.roles.ROLES`,
a confidence in [0, 1] and the cues that decided it.

It is a fast classifier in the style of the simplicity detector: plain Python, weighted
cues looked up in dictionaries, no model. The cues live in ``role_cues.toml`` next to this
module, read once on first use; the file's header explains how they are matched and scored.
Only the head and the tail of a long text are read, so a megabyte of pasted log costs no
more than a few kilobytes.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from crewchief.gateway.roles import ROLES

CUES_FILE = "role_cues.toml"
PLACES = ("system", "opening", "request")
FALLBACK = "general"
_GAP = "..."
_MAX_GAP = 4  # words a "..." in a phrase stands for, at most
_SNIPPET = 40  # characters of a matched pattern quoted in a reason
_OPENING_CHARS = 160  # characters of a sentence read for its opening
_HEAD_SENTENCES, _TAIL_SENTENCES = 48, 16  # sentences of a long request whose openings count
_LABELS = {
    "system": "system prompt",
    "opening": "request opens with",
    "request": "request",
    "patterns": "request",
}

_WORD = re.compile(r"[^\W_]+")
# The same split for ASCII text, several times faster: punctuation to spaces, then str.split.
_ASCII_PUNCT = {c: " " for c in range(128) if not chr(c).isalnum()}
_MARKS = re.compile(r"[\u0300-\u036f]")
# "utils.py" and "3.13" do not end a sentence; nor does a colon, which introduces material.
_SENTENCE_END = re.compile(r"[.!?;\n]\s")
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.$")


@dataclass(frozen=True, slots=True)
class Inference:
    """The role inferred for a request."""

    role: str  # one of ROLES
    confidence: float  # 0..1, how clearly the winner beat the rest
    reasons: list[str]  # the cues that decided it, strongest first


def fold(text: str) -> str:
    """Lowercase and strip accents, so 'Füge' and 'fuge' match the same cue."""
    text = text.casefold()
    if text.isascii():
        return text
    return _MARKS.sub("", unicodedata.normalize("NFKD", text)).replace("’", "'")


def tokens(folded: str) -> list[str]:
    """The words of an already folded text: runs of letters and digits."""
    if folded.isascii():
        return folded.translate(_ASCII_PUNCT).split()
    return _WORD.findall(folded)


def words(text: str) -> tuple[str, ...]:
    """The folded words of ``text``, as cues and requests are both split."""
    return tuple(tokens(fold(text)))


def window(text: str, head: int, tail: int) -> str:
    """The first ``head`` and the last ``tail`` characters of a long text."""
    if len(text) <= head + tail:
        return text
    return text[:head] + "\n\n" + text[-tail:] if tail else text[:head]


@dataclass(frozen=True, slots=True)
class Cue:
    """A phrase that points to a role: words that follow each other and, after each ``...``,
    more words a little further on."""

    role: str
    weight: float
    text: str
    parts: tuple[tuple[str, ...], ...]
    size: int  # words in all parts: where several cues start at one word, the largest counts

    def span(self, ws: list[str], i: int) -> int:
        """How many words the cue covers from ``ws[i]`` on (0: it does not match there).

        ``ws[i]`` is the cue's first word already (cues are looked up by it)."""
        first = self.parts[0]
        end = i + len(first)
        if end > len(ws):
            return 0
        for k in range(1, len(first)):
            if ws[i + k] != first[k]:
                return 0
        for part in self.parts[1:]:
            found = _find(ws, part, end, end + _MAX_GAP + 1)
            if found < 0:
                return 0
            end = found + len(part)
        return end - i


def _find(ws: list[str], part: tuple[str, ...], start: int, stop: int) -> int:
    n = len(part)
    for j in range(start, min(stop, len(ws) - n + 1)):
        if ws[j] == part[0] and tuple(ws[j : j + n]) == part:
            return j
    return -1


@dataclass(frozen=True, slots=True)
class Pattern:
    """Text in the raw request that points to a role: any of some literal substrings, or a
    regular expression."""

    role: str
    weight: float
    label: str
    literals: tuple[str, ...] = ()
    regex: re.Pattern[str] | None = None
    name: bool = False  # the regex must match the end of a longer name: KeyError, not Error

    def find(self, raw: str) -> str | None:
        """The matched text (with the name it ends, as in ``KeyError:``), or None."""
        for literal in self.literals:
            if literal in raw:
                return literal
        if self.regex is None:
            return None
        for m in self.regex.finditer(raw):
            start = m.start()
            while start > 0 and m.start() - start < _SNIPPET and raw[start - 1] in _NAME_CHARS:
                start -= 1
            if start < m.start() or not self.name:
                return raw[start : m.end()]
        return None


@dataclass(frozen=True, slots=True)
class Settings:
    min_score: float = 3.0
    strong: float = 8.0
    system_head: int = 4000
    system_tail: int = 1000
    request_head: int = 4000
    request_tail: int = 2000
    max_reasons: int = 4
    caps: Mapping[str, float] | None = None

    def cap(self, place: str) -> float:
        return (self.caps or {}).get(place, float("inf"))


Index = dict[str, list[Cue]]


def _index(cues: Iterable[Cue]) -> Index:
    index: Index = {}
    for cue in cues:
        index.setdefault(cue.parts[0][0], []).append(cue)
    return index


def _phrase(text: str) -> tuple[tuple[str, ...], ...]:
    parts = tuple(words(p) for p in text.split(_GAP))
    if not parts or any(not p for p in parts):
        raise ValueError(f"cue {text!r}: expected words, with '...' only between them")
    return parts


def _weighted(table: Any, where: str) -> Iterable[tuple[float, str]]:
    if not isinstance(table, dict):
        raise ValueError(f"{where}: expected a table of weight = [phrases]")
    for key, phrases in table.items():
        try:
            weight = float(key)
        except ValueError:
            raise ValueError(f"{where}: weight {key!r} is not a number") from None
        if weight <= 0 or not isinstance(phrases, list):
            raise ValueError(f"{where}.{key}: expected a positive weight and a list of phrases")
        for text in phrases:
            yield weight, str(text)


def _patterns(role: str, items: Any) -> list[Pattern]:
    if not isinstance(items, list):
        raise ValueError(f"{role}.patterns: expected [[{role}.patterns]] tables")
    out = []
    for item in items:
        try:
            regex = re.compile(item["regex"]) if "regex" in item else None
            literals = tuple(str(s) for s in item.get("literals", ()))
            name = bool(item.get("name", False))
            pattern = Pattern(role, float(item["weight"]), item["label"], literals, regex, name)
        except (KeyError, TypeError, ValueError, AttributeError, re.error) as exc:
            raise ValueError(f"{role}.patterns: {item!r}: {exc}") from None
        if not literals and regex is None:
            raise ValueError(f"{role}.patterns: {item!r}: expected literals or a regex")
        out.append(pattern)
    return out


@dataclass(frozen=True, slots=True)
class Cues:
    """Compiled cues: per place, the cues indexed by their first word."""

    places: Mapping[str, Index]
    patterns: tuple[Pattern, ...]
    skip: Index
    settings: Settings

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Cues:
        """Compile the parsed cue file (see ``role_cues.toml`` for the format).

        Raises:
            ValueError: naming the table or the cue that is wrong.
        """
        raw = dict(data)
        try:
            settings = Settings(**raw.pop("settings", {}))
        except TypeError as exc:
            raise ValueError(f"[settings]: {exc}") from None
        skip = [
            Cue("", 0.0, t, parts, sum(map(len, parts)))
            for t in raw.pop("skip", {}).get("phrases", [])
            if (parts := _phrase(t))
        ]
        by_place: dict[str, dict[tuple[str, str], Cue]] = {p: {} for p in PLACES}
        patterns: list[Pattern] = []
        for role, table in raw.items():
            if role not in ROLES:
                raise ValueError(f"[{role}]: not a role; expected one of {', '.join(ROLES)}")
            for place, entries in table.items():
                if place == "patterns":
                    patterns.extend(_patterns(role, entries))
                    continue
                if place not in PLACES:
                    raise ValueError(f"[{role}.{place}]: expected one of {PLACES} or patterns")
                for weight, text in _weighted(entries, f"{role}.{place}"):
                    parts = _phrase(text)
                    cue = Cue(role, weight, text, parts, sum(map(len, parts)))
                    by_place[place].setdefault((role, " ... ".join(map(" ".join, parts))), cue)
        return cls(
            places={p: _index(c.values()) for p, c in by_place.items()},
            patterns=tuple(patterns),
            skip=_index(skip),
            settings=settings,
        )

    @classmethod
    def from_toml(cls, text: str) -> Cues:
        import tomllib

        return cls.from_dict(tomllib.loads(text))


@lru_cache(maxsize=1)
def shipped_cues() -> Cues:
    """The cues that ship with crewchief (read once per process)."""
    from importlib.resources import files

    return Cues.from_toml(files(__package__).joinpath(CUES_FILE).read_text(encoding="utf-8"))


def cues_loaded() -> bool:
    """Whether :func:`shipped_cues` has been read (then inference does no I/O)."""
    return shipped_cues.cache_info().currsize > 0


def sentence_heads(folded: str) -> list[list[str]]:
    """The first words of each sentence or line of a folded text (of the first and the last
    ones, when there are many)."""
    # A clause after a comma often holds the ask: "tests later, but first a plan", "it's off
    # by a day, fix it".
    pieces = _SENTENCE_END.split(folded.replace("\n", "\n ").replace(", ", ". "))
    if len(pieces) > _HEAD_SENTENCES + _TAIL_SENTENCES:
        pieces = pieces[:_HEAD_SENTENCES] + pieces[-_TAIL_SENTENCES:]
    return [ws for piece in pieces if (ws := tokens(piece[:_OPENING_CHARS]))]


def _best_at(ws: list[str], i: int, index: Index) -> tuple[list[Cue], int]:
    """The largest cues that match at ``ws[i]`` (the tightest if they tie), and their span."""
    best: list[Cue] = []
    best_key = (0, 0)
    for cue in index.get(ws[i], ()):
        span = cue.span(ws, i)
        if not span:
            continue
        key = (cue.size, -span)
        if key > best_key:
            best, best_key = [cue], key
        elif key == best_key and all(c.role != cue.role for c in best):
            best.append(cue)  # a tie between two roles counts for both, within one role once
    return best, -best_key[1]


def _after_skip(ws: list[str], skip: Index) -> int:
    i = 0
    while i < len(ws):
        found, span = _best_at(ws, i, skip)
        if not found:
            break
        i += span
    return i


def match_anywhere(ws: list[str], index: Index) -> dict[str, Cue]:
    """Every cue found in the words (once each); a match hides the shorter ones inside it."""
    hits: dict[str, Cue] = {}
    free = 0
    for i, word in enumerate(ws):
        if i < free or word not in index:
            continue
        found, _ = _best_at(ws, i, index)
        if found:
            for cue in found:
                hits.setdefault(cue.role + ":" + cue.text, cue)
            free = i + len(found[0].parts[0])
    return hits


def match_openings(heads: list[list[str]], index: Index, skip: Index) -> dict[str, Cue]:
    """Cues that open a sentence, read at its first word and after filler ('could you')."""
    hits: dict[str, Cue] = {}
    for ws in heads:
        for i in {0, _after_skip(ws, skip)}:
            if i < len(ws):
                for cue in _best_at(ws, i, index)[0]:
                    hits.setdefault(cue.role + ":" + cue.text, cue)
    return hits


@dataclass(slots=True)
class Tally:
    """Scores per role, each place capped, and the evidence behind them."""

    settings: Settings
    scores: dict[str, float]
    evidence: list[tuple[float, str, str]]  # (weight, role, reason)

    def add(self, place: str, found: Iterable[tuple[str, float, str]]) -> None:
        per_role: dict[str, float] = {}
        for role, weight, what in found:
            per_role[role] = per_role.get(role, 0.0) + weight
            self.evidence.append((weight, role, f"{_LABELS[place]}: {what} → {role}"))
        cap = self.settings.cap(place)
        for role, total in per_role.items():
            self.scores[role] += min(total, cap)


def _phrases(hits: dict[str, Cue]) -> Iterable[tuple[str, float, str]]:
    return ((c.role, c.weight, f"'{c.text}'") for c in hits.values())


def _pattern_hits(raw: str, patterns: Iterable[Pattern]) -> list[tuple[str, float, str]]:
    found = []
    for p in patterns:
        if (text := p.find(raw)) is not None:
            snippet = " ".join(text.split())[:_SNIPPET]
            found.append((p.role, p.weight, f"{p.label} '{snippet}'"))
    return found


def score(system: str | None, request: str | None, cues: Cues) -> Tally:
    """Every role's score for a request, and the cues found."""
    st = cues.settings
    tally = Tally(st, dict.fromkeys(ROLES, 0.0), [])
    system = window(system or "", st.system_head, st.system_tail)
    if system and not system.isspace():
        tally.add("system", _phrases(match_anywhere(tokens(fold(system)), cues.places["system"])))
    raw = window(request or "", st.request_head, st.request_tail)
    if raw and not raw.isspace():
        prose = fold(_FENCE.sub("\n", raw) if "```" in raw else raw)
        heads = sentence_heads(prose)
        tally.add("opening", _phrases(match_openings(heads, cues.places["opening"], cues.skip)))
        tally.add("request", _phrases(match_anywhere(tokens(prose), cues.places["request"])))
        tally.add("patterns", _pattern_hits(raw, cues.patterns))
    return tally


def decide(tally: Tally) -> Inference:
    """The winning role, how clearly it won, and the reasons."""
    st = tally.settings
    scores = tally.scores
    ranked = sorted(ROLES, key=lambda r: -scores[r])  # stable: a tie goes to the earlier role
    best, second = ranked[0], ranked[1]
    evidence = sorted(tally.evidence, key=lambda e: -e[0])
    if scores[best] < st.min_score:
        top = f": the best was {best} at {scores[best]:g}" if scores[best] else ""
        why = f"no role stood out{top} (minimum {st.min_score:g})"
        weak = [reason for _, _, reason in evidence[: st.max_reasons]]
        return Inference(FALLBACK, round(1.0 - scores[best] / st.min_score, 3), [why, *weak])
    reasons = [reason for _, role, reason in evidence if role == best][: st.max_reasons]
    if scores[second]:
        reasons.append(f"scores: {best} {scores[best]:g}, {second} {scores[second]:g}")
    confidence = (scores[best] - scores[second]) / max(scores[best], st.strong)
    return Inference(best, round(confidence, 3), reasons)


def infer_role(system: str | None, request: str) -> Inference:
    """The role a request plays, read from its system prompt and its latest user message."""
    return decide(score(system, request, shipped_cues()))
