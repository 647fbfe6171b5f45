"""The critical terms of a request: the words that change its answer.

Embeddings put "add a column" next to "drop a column" and "Python 3.12" next to "Python
3.8", so the semantic cache lets one request reuse another's answer only when both agree
on these, however similar they are:

- numbers and versions (number words read as digits), and the word a number counts;
- quoted text (``'...'``, ``"..."``, backticks): it must appear in the other request;
- code: identifiers (snake_case, camelCase, dotted names, paths, flags) and operators;
- names: capitalised or all-capital words past a sentence's start, the word before a noun
  that names a thing ("the *orders* table") and the word after "named" or "called";
- programming vocabulary: languages, tools, platforms, data formats, data types and
  artifacts (tests, docstrings, migrations, ...);
- labels: negation, "why", all / only, comparatives and extremes, and each side of an
  opposite pair (add / remove, enable / disable, encode / decode, before / after, ...);
- direction: "a list to a set" is not "a set to a list";
- prefixes that turn a word (lock / unlock, sensitive / insensitive, move / remove);
- a one-word swap: two requests that differ by exactly one content word each ("time
  complexity" / "space complexity") are a minimal pair, not a paraphrase.

Codes, names and vocabulary of one request must appear in the other; labels must be the
same on both sides. The word lists are in ``critical_terms.toml`` and are English: a
request in another language cannot be checked, so it never matches.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Any

LISTS_FILE = "critical_terms.toml"
_ARROW_REACH = 4  # tokens looked at on each side of "to" / "from" for the two ends

_APOSTROPHE = re.compile(r"(?<=\w)[’`](?=\w)")
_QUOTE = re.compile(r"`([^`]+)`|\"([^\"]+)\"|“([^”]+)”|‘([^’]+)’|(?<![\w'])'([^'\n]+)'(?![\w'])")
_CONTRACTION = re.compile(r"(?i)(?:n't\b)|(?:'(?:s|re|ve|m|ll|d)\b)")
_TOKEN = re.compile(
    r"(?P<flag>(?<![\w-])--?[A-Za-z][\w-]*)"
    r"|(?P<op>[=!<>]=+|=>|->|&&|\|\||\*\*|::)"
    r"|(?P<word>[#.~/]?[\w#+]+(?:[./\\:@-][\w#+]+)*)"
    r"|(?P<end>[.?!;:](?=\s|$)|[—–]|\s-\s)"
)
_CODE = re.compile(r"[_/\\@#]|\w\.\w|^\.|::|[a-z][A-Z]")
_PATH = re.compile(r"[_/\\@#]|::")
_DIGITS = re.compile(r"\d+(?:\.\d+)*")
_LETTERS = re.compile(r"[^\W\d_]+")
_ARROWS = {"to": False, "into": False, "onto": False, "from": True}  # True: points back


@dataclass(frozen=True, slots=True)
class Terms:
    """What a request says that its answer depends on (see the module's description)."""

    english: bool
    words: frozenset[str]  # every word, in its listed or stemmed form
    content: frozenset[str]  # the words that carry meaning (labels as "~label")
    anchors: frozenset[str]  # names and vocabulary: the other must have them
    codes: frozenset[str]  # identifiers, flags, operators: the other must have them as written
    phrases: tuple[str, ...]  # quoted text: the other's text must contain it
    numbers: frozenset[str]
    sides: frozenset[str]  # labels: the other must have the same
    arrows: frozenset[tuple[str, str]]  # (from, to) of "X to Y" and "Y from X"
    text: str  # lower case, spaces collapsed


@dataclass(frozen=True, slots=True)
class _Lists:
    phrase: re.Pattern[str]
    phrase_to: dict[str, str]  # group name -> replacement ("" : the match, unspaced)
    alias: dict[str, str]
    numbers: dict[str, str]
    vocabulary: frozenset[str]
    nouns: frozenset[str]
    noun_after: frozenset[str]
    sides: dict[str, str]  # word -> label
    prefixes: tuple[str, ...]
    slots: frozenset[str]
    plain: frozenset[str]
    common: frozenset[str]
    foreign: frozenset[str]
    filler: frozenset[str]
    framing: frozenset[str]
    articles: frozenset[str]
    known: frozenset[str]
    ordinary: frozenset[str]  # listed words that are neither vocabulary nor nouns


@cache
def _lists() -> _Lists:
    import tomllib
    from importlib.resources import files

    raw = tomllib.loads(files(__package__).joinpath(LISTS_FILE).read_text(encoding="utf-8"))
    return _compile(raw)


def _compile(raw: dict[str, Any]) -> _Lists:
    single = re.compile(r"[a-z0-9]+")
    alias = {k: v for k, v in raw["aliases"].items() if single.fullmatch(k)}
    phrases = {f"p{i}": (k, v) for i, (k, v) in enumerate(raw["aliases"].items()) if k not in alias}
    pattern = "|".join(f"(?P<{name}>{key})" for name, (key, _) in phrases.items())
    sides = {w: label for label, words in raw["sides"].items() for w in words}
    vocabulary = frozenset(w for words in raw["vocabulary"].values() for w in words)
    nouns = frozenset(raw["nouns"]["words"])
    slots, plain = frozenset(raw["slots"]["nouns"]), frozenset(raw["slots"]["plain"])
    english = raw["english"]
    framing = frozenset(english["framing"])
    filler = frozenset(english["filler"]) | framing
    known = frozenset(
        [*alias.values(), *vocabulary, *nouns, *sides, *slots, *plain, *filler, *english["common"]]
    )
    return _Lists(
        phrase=re.compile(rf"(?i)(?<![\w.#+-])(?=[a-z.(\\])(?:{pattern})(?![\w#+])"),
        phrase_to={name: to for name, (_, to) in phrases.items()},
        alias=alias,
        numbers=dict(raw["numbers"]),
        vocabulary=vocabulary,
        nouns=nouns,
        noun_after=frozenset(raw["nouns"]["after"]) | vocabulary,
        sides=sides,
        prefixes=tuple(raw["prefixes"]["opposite"]),
        slots=slots,
        plain=plain | filler,
        common=frozenset(english["common"]),
        foreign=frozenset(english["foreign"]),
        filler=filler,
        framing=framing,
        articles=frozenset(english["articles"]),
        known=known,
        ordinary=known - vocabulary - slots - nouns,
    )


def _stem(word: str) -> str:
    """A crude English stem, the same for a word's plural and -ed / -ing forms."""
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "ches", "shes", "xes", "zes")):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    for end, least in (("ing", 6), ("ed", 6)):
        if len(word) >= least and word.endswith(end) and not word.endswith("eed"):
            base = word[: -len(end)]
            doubled = len(base) > 2 and base[-1] == base[-2] and base[-1] not in "lsz"
            return base[:-1] if doubled else base
    return word


def _lemma(word: str, known: frozenset[str]) -> str:
    """``word`` as the lists spell it (``removing`` → ``remove``), else its stem."""
    if word in known:
        return word
    for candidate in _inflected(word):
        if candidate in known:
            return candidate
    return _stem(word)


def _inflected(word: str) -> tuple[str, ...]:
    """What ``word`` may be an inflection of: ``adding`` → ``add``, ``ad``, ``adde``."""
    if word.endswith("ies"):
        return (word[:-3] + "y",)
    if word.endswith("ing"):
        return (word[:-3], word[:-3] + "e", word[:-4])
    if word.endswith("ed"):
        return (word[:-2], word[:-1], word[:-3])
    if word.endswith("es"):
        return (word[:-2], word[:-1])
    return (word[:-1],) if word.endswith("s") else ()


def _related(a: str, b: str) -> bool:
    """Whether two words are forms of one (``implement``, ``implementation``) or one is
    a part of the other written as one word (``line``, ``multiline``)."""
    short, long = sorted((a, b), key=len)
    if len(short) < 4 or not (a.isalpha() and b.isalpha()):
        return False
    if long.startswith(short) or long.endswith(short):
        return True
    return len(short) >= 5 and a[: len(short) - 2] == b[: len(short) - 2]


def _unquote(text: str, phrases: list[str]) -> str:
    def keep(match: re.Match[str]) -> str:
        quoted = next(g for g in match.groups() if g is not None)
        phrases.append(" ".join(quoted.lower().split()))
        return f" {quoted} "

    return _QUOTE.sub(keep, text)


class _Reader:
    """One pass over a request's tokens, collecting its terms."""

    def __init__(self, lists: _Lists):
        self.lists = lists
        self.words: set[str] = set()
        self.content: set[str] = set()
        self.anchors: set[str] = set()
        self.codes: set[str] = set()
        self.numbers: set[str] = set()
        self.sides: set[str] = set()
        self.seq: list[tuple[str, bool]] = []  # (word, is an anchor or a number)
        self.common = self.foreign = 0
        self.prev = ""  # the previous word, as the lists spell it
        self.counted = False  # the previous token was a number

    def token(self, kind: str, raw: str, start: bool) -> None:
        low = raw.lower()
        if kind in ("flag", "op"):
            self.code(low)
        elif any(c.isdigit() for c in raw) and low not in self.lists.alias:
            self.numbered(raw, low)
        elif _CODE.search(raw):
            word = _lemma(self.lists.alias.get(low, low), self.lists.known)
            if word in self.lists.vocabulary:
                self.anchor(word)
            else:
                self.code(word)
        else:
            parts = raw.split("-")
            if len(parts) > 1:
                self.words.add("".join(parts).lower())
            for i, part in enumerate(parts):
                if part:
                    self.word(part, start and i == 0)

    def numbered(self, raw: str, low: str) -> None:
        """A token with digits: its numbers, and its letters as words (``100MB``)."""
        if _CODE.search(raw) or re.search(r"[^\W\d_]\d|\d[^\W\d_]", raw) is None:
            self.words.add(low)
        if _PATH.search(raw):  # an identifier or a path with digits: as written, too
            self.codes.add(low)
        for number in _DIGITS.findall(raw):
            self.number(number)
        for letters in _LETTERS.findall(raw):
            self.word(letters, False)
            self.counted = False

    def number(self, digits: str) -> None:
        self.numbers.add(digits)
        self.seq.append((digits, True))
        self.counted, self.prev = True, digits

    def code(self, word: str) -> None:
        self.codes.add(word)
        self.anchor(word)

    def anchor(self, word: str) -> None:
        self.anchors.add(word)
        self.words.add(word)
        self.content.add(word)
        self.seq.append((word, True))
        self.counted, self.prev = False, word

    def word(self, raw: str, start: bool) -> None:
        lists, low = self.lists, raw.lower()
        self.common += low in lists.common
        self.foreign += low in lists.foreign
        if low in lists.numbers:
            self.number(lists.numbers[low])
            return
        word = _lemma(lists.alias.get(low, low), lists.known)
        self.words.update((low, word))
        noun = word in lists.nouns and (low.endswith("s") or self.prev in lists.noun_after)
        if word in lists.sides and not noun:
            self.sides.add(lists.sides[word])
            self.content.add("~" + lists.sides[word])
        else:
            if self.is_anchor(raw, word, start):
                self.anchors.add(word)
            if word in lists.slots and self.names(self.prev):
                self.anchors.add(self.prev)
            if word not in lists.filler or (word in lists.framing and self.prev in lists.articles):
                self.content.add(word)
        self.seq.append((word, word in self.anchors))
        self.counted, self.prev = False, word

    def is_anchor(self, raw: str, word: str, start: bool) -> bool:
        lists = self.lists
        if word in lists.vocabulary:
            return True
        if word in lists.nouns:
            return raw.lower().endswith("s") or self.prev in lists.noun_after
        if word in lists.ordinary:
            return self.prev in ("named", "called")
        capital = raw[0].isupper() and len(raw) > 1 and (not start or raw.isupper())
        return capital or self.counted or self.prev in ("named", "called")

    def names(self, word: str) -> bool:
        """Whether ``word``, before a noun like "table", names the thing."""
        lists = self.lists
        listed = (lists.plain, lists.sides, lists.vocabulary, lists.numbers)
        return word.isalpha() and not any(word in words for words in listed)

    def arrows(self) -> frozenset[tuple[str, str]]:
        found = set()
        for i, (word, _) in enumerate(self.seq):
            if word not in _ARROWS:
                continue
            left = next((w for w, a in reversed(self.seq[max(0, i - _ARROW_REACH) : i]) if a), None)
            right = next((w for w, a in self.seq[i + 1 : i + 1 + _ARROW_REACH] if a), None)
            if left and right and left != right:
                found.add((right, left) if _ARROWS[word] else (left, right))
        return frozenset(found)


def terms_of(text: str) -> Terms:
    """The critical terms of ``text``."""
    lists = _lists()
    phrases: list[str] = []
    body = _unquote(_APOSTROPHE.sub("'", text), phrases)
    body = _CONTRACTION.sub(lambda m: " not" if m.group().lower() == "n't" else "", body)

    def alias(match: re.Match[str]) -> str:
        to = lists.phrase_to[match.lastgroup or ""]
        return " " + (to or re.sub(r"[\s-]+", "", match.group()).lower()) + " "

    body = lists.phrase.sub(alias, body)
    reader = _Reader(lists)
    start = True
    for match in _TOKEN.finditer(body):
        kind = match.lastgroup or "end"
        if kind == "end":
            start = True
            continue
        reader.token(kind, match.group(), start)
        start = False
    return Terms(
        english=reader.foreign <= reader.common,
        words=frozenset(reader.words),
        content=frozenset(reader.content),
        anchors=frozenset(reader.anchors - reader.codes),
        codes=frozenset(reader.codes),
        phrases=tuple(phrases),
        numbers=frozenset(reader.numbers),
        sides=frozenset(reader.sides),
        arrows=reader.arrows(),
        text=" ".join(text.lower().split()),
    )


def conflict(a: Terms, b: Terms) -> str | None:
    """Why two requests cannot share an answer, or None when their critical terms agree."""
    if not (a.english and b.english):
        return "not English: its critical terms cannot be checked"
    if a.numbers != b.numbers:
        return "numbers differ: " + ", ".join(sorted(a.numbers ^ b.numbers))
    if a.sides != b.sides:
        return "different words: " + ", ".join(sorted(a.sides ^ b.sides))
    missing = sorted(
        _missing(a.anchors, b.words)
        | _missing(b.anchors, a.words)
        | (a.codes - b.words)
        | (b.codes - a.words)
    )
    if missing:
        return "names only one has: " + ", ".join(missing)
    quoted = [p for p in a.phrases if p not in b.text] + [p for p in b.phrases if p not in a.text]
    if quoted:
        return "quoted text only one has: " + ", ".join(quoted)
    for x, y in a.arrows:
        if (y, x) in b.arrows:
            return f"opposite directions: {x} to {y}, {y} to {x}"
    return _swapped(a, b)


def _missing(anchors: frozenset[str], words: frozenset[str]) -> set[str]:
    """The anchors not among ``words``; a plain word may be there in another form."""
    vocabulary = _lists().vocabulary
    return {
        anchor
        for anchor in anchors - words
        if anchor in vocabulary or not any(_related(anchor, w) for w in words)
    }


def _swapped(a: Terms, b: Terms) -> str | None:
    """A word of one request that is a word of the other turned by a prefix, or the one
    content word each has that the other has not (forms of one word count as one)."""
    only_a, only_b = a.content - b.content, b.content - a.content
    prefixes = _lists().prefixes
    for words, other in ((only_a, b.words), (only_b, a.words)):
        for word in words:
            for prefix in prefixes:
                base = word[len(prefix) :]
                if word.startswith(prefix) and len(base) >= 3 and base in other:
                    return f"a word and its opposite: {base}, {word}"
    only_a = {w for w in only_a if not any(_related(w, o) for o in b.content)}
    only_b = {w for w in only_b if not any(_related(w, o) for o in a.content)}
    if len(only_a) == 1 == len(only_b):
        return f"one word swapped: {only_a.pop()}, {only_b.pop()}"
    return None


def agree(a: str, b: str) -> bool:
    """Whether two requests agree on their critical terms."""
    return conflict(terms_of(a), terms_of(b)) is None
