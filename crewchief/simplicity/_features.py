"""Turn a prepared request into the sparse features the linear model weighs.

Three blocks:

- ``s:`` signals from :mod:`._signals`, and every pair of fired signals, so a
  linear model can learn that "question form" means simple unless it comes
  with "points at existing code";
- ``w:``/``b:``/``f:`` words, word pairs and the opening word of the prose;
- ``c:`` character 3- to 5-grams of the words, which carry stems across
  languages and typos ("refactor", "refactoriza", "refaktoriere").

The word and character blocks are scaled to unit length, so a long request
weighs no more than a short one.
"""

from __future__ import annotations

import math

from crewchief.simplicity._signals import Prepared, Signals, _core, prepare, signals

CHAR_WORDS = 60  # words whose character n-grams are used
MAX_CHAR_WORD = 40  # longer "words" are hashes or pasted blobs; their n-grams say nothing


def signal_features(s: Signals) -> dict[str, float]:
    names = sorted(s.fired)
    feats = {f"s:{n}": 1.0 for n in names}
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            feats[f"s:{a}&{b}"] = 1.0
    return feats


def word_features(p: Prepared) -> dict[str, float]:
    words = p.words
    keys = {f"w:{w}" for w in words}
    keys.update(f"b:{a} {b}" for a, b in zip(words, words[1:], strict=False))
    head = _core(p.sentences[0]) if p.sentences else []
    if head:
        keys.add(f"f:{head[0]}")
        if len(head) > 1:
            keys.add(f"f:{head[0]} {head[1]}")
    if not keys:
        return {}
    value = 1.0 / math.sqrt(len(keys))
    return dict.fromkeys(keys, value)


def char_grams(word: str) -> set[str]:
    """The character 3- to 5-grams of ``<word>`` (none for words over MAX_CHAR_WORD)."""
    if len(word) > MAX_CHAR_WORD:
        return set()
    padded = f"<{word}>"
    return {padded[i : i + n] for n in (3, 4, 5) for i in range(len(padded) - n + 1)}


def char_features(p: Prepared) -> dict[str, float]:
    keys: set[str] = set()
    for w in p.words[:CHAR_WORDS]:
        keys.update("c:" + g for g in char_grams(w))
    if not keys:
        return {}
    value = 1.0 / math.sqrt(len(keys))
    return dict.fromkeys(keys, value)


def features(p: Prepared, s: Signals) -> dict[str, float]:
    """All features of one request, as ``{name: value}``."""
    feats = signal_features(s)
    feats.update(word_features(p))
    feats.update(char_features(p))
    return feats


def analyse(text: str) -> tuple[Prepared, Signals, dict[str, float]]:
    """The prepared text, its signals and its features: what scoring and training both need."""
    p = prepare(text)
    s = signals(p)
    return p, s, features(p, s)
