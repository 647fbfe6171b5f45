"""Search terms of code and of questions about it, for BM25.

An identifier is split where its words meet (``snake_case``, ``camelCase``,
``HTTPServer``) so that a question's words find it, and is kept whole as well (lower-cased)
so that naming it exactly ranks it first. Words are lower-cased and stemmed (Snowball's
English stemmer: "redirects" and "redirected" meet at "redirect"); English stop words and
the few keywords every line of code repeats are dropped.
"""

from __future__ import annotations

import re
import threading
from functools import cache

from crewchief.knowledge._imports import heavy

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9]+")
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")
_STOP = frozenset(
    """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    self cls def return none true false pass elif else""".split()
)
_lock = threading.Lock()


@cache
def _stemmer():  # noqa: ANN202 - PyStemmer has no type hints
    return heavy("Stemmer").Stemmer("english")


@cache
def _stem(word: str) -> str:
    with _lock:  # a Stemmer object is not safe to share between threads
        return _stemmer().stemWord(word)


def terms(text: str) -> list[str]:
    """The BM25 terms of ``text``, in order (repeats kept: they count)."""
    return [term for term, _word in sourced_terms(text)]


def words(text: str) -> list[str]:
    """The words of ``text``'s identifiers, lower-cased, in order: ``raise_for_status``
    and ``raiseForStatus`` are "raise", "for", "status" (what a vector model reads)."""
    return [part.lower() for m in _IDENTIFIER.finditer(text) for part in _WORD.findall(m.group())]


def sourced_terms(text: str) -> list[tuple[str, str]]:
    """The BM25 terms of ``text``, each with the word of ``text`` it comes from."""
    out: list[tuple[str, str]] = []
    for match in _IDENTIFIER.finditer(text):
        word = match.group()
        parts = _WORD.findall(word)
        for part in parts:
            lowered = part.lower()
            if len(lowered) > 1 and lowered not in _STOP:
                out.append((_stem(lowered), part))
        if len(parts) > 1:
            out.append((word.strip("_").lower(), word))
    return out
