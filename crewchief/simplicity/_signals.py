"""Cheap, explainable signals read off a request, and the text they are read from.

A request is split into *prose* (what the user wrote to us) and *context* (pasted
code, logs, configs). Signals look at the prose only, so a question wrapped
around a 200-line stack trace still reads as a question. Each signal has a
name the model weighs and a detail that makes the reason readable
("polite order: 'could you' + 'refactor'").
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field

from crewchief.simplicity import _lexicon as lex

_MARKS = re.compile(r"[\u0300-\u036f]")
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_SENTENCE_END = re.compile(r"(?<=[.!?;:])\s+|\n+|\s[—–-]+\s")
_INLINE_CODE = re.compile(r"`[^`\n]+`")
# Quoted text is material to work on ("make this less harsh: 'redo it'"), not an order.
_QUOTED = re.compile(
    r"\"[^\"\n]{3,}\"|“[^”\n]{3,}”|«[^»\n]{3,}»|„[^“\n]{3,}“|(?<!\w)'[^'\n]{3,}'(?!\w)"
)
_FENCE = re.compile(r"```.*?(?:```|\Z)", re.DOTALL)
_LOG_LINE = re.compile(
    r"^\s*(?:at |File \"|Traceback|>>>|\$ |#!|\d{4}-\d\d-\d\d|\[\w+\]|"
    r"(?:ERROR|WARN(?:ING)?|INFO|DEBUG|FATAL|panic|Caused by|Exception)\b|"
    r"\S+ (?:ERR!|error:|Error:|warning:)|"
    r"[\w.]*(?:Error|Exception|Warning|Exit|Interrupt)\b:?)"
)
_SYMBOLS = frozenset("{}[]()<>=;:/\\|_$#@*\"'`.,+-&%~^")
_LIST_ITEM = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s+\S", re.MULTILINE)
_PATH = re.compile(
    r"(?:^|[\s`'\"(])((?:[\w.*-]+/)+[\w.*-]*|[\w*-]*\.(\w{1,10}))(?=$|[\s`'\"),:;?!])"
)
_TICKET = re.compile(r"(?:#\d+\b|\b[A-Z][A-Z0-9]{1,9}-\d+\b|\bPR\s*#?\d+)")
_SKIP_START = frozenset(
    "hey hi hello ok okay so now also and but please pls yo alright right quick well btw "
    "oye vale bueno alors bon dis ok also na und".split()
)
WINDOW_HEAD, WINDOW_TAIL = 80, 40


def fold(text: str) -> str:
    """Lowercase and strip accents, so 'Füge' and 'fuge' match the same entry."""
    return _MARKS.sub("", unicodedata.normalize("NFKD", text.casefold())).replace("’", "'")


def _is_context_line(line: str) -> bool:
    stripped = line.strip()
    if not stripped:
        return False
    if line.startswith(("    ", "\t")) or _LOG_LINE.match(line):
        return True
    symbols = sum(1 for ch in stripped if ch in _SYMBOLS)
    return len(stripped) > 3 and symbols / len(stripped) > 0.14


def _head(line: str) -> str | None:
    """A line's first token, unless the line is blank or a list item."""
    parts = line.split(None, 1)
    if not parts or _LIST_ITEM.match(line):
        return None
    return parts[0]


def _prose_lines(lines: list[str]) -> list[str]:
    """Lines the user wrote, without code, logs or configs pasted among them.

    A first token that starts three or more lines ("npm ERR!", "E   ") marks a log.
    """
    heads = Counter(h for h in map(_head, lines) if h is not None)
    return [
        ln
        for ln in lines
        if not _is_context_line(ln)
        and not (heads.get(_head(ln) or "", 0) >= 3 and not ln.rstrip().endswith("?"))
    ]


@dataclass(slots=True)
class Prepared:
    """A request split into the words the user wrote and the context they pasted."""

    words: list[str]  # folded prose words, capped to a head and a tail window
    sentences: list[list[str]]  # folded words per prose sentence
    prose_words: int
    context_lines: int
    ends_question: bool
    list_items: int
    paths: list[str] = field(default_factory=list)
    tickets: int = 0


def prepare(text: str) -> Prepared:
    """Split ``text`` into prose and pasted context, and fold the prose for matching."""
    fenced = _FENCE.findall(text)
    context_lines = sum(block.count("\n") + 1 for block in fenced)
    body = _FENCE.sub("\n", text) if fenced else text
    lines = body.splitlines()
    if len(lines) >= 3:
        prose_lines = _prose_lines(lines)
        if any(ln.strip() for ln in prose_lines):
            context_lines += len(lines) - len(prose_lines)
            lines = prose_lines
    prose = "\n".join(lines).strip()
    paths = [m.group(1) for m in _PATH.finditer(prose) if _is_path(m)]
    # Inline code is quoted material, not the user's words: `SELECT ... FOR UPDATE` orders nothing.
    prose = _QUOTED.sub(" quotespan ", _INLINE_CODE.sub(" codespan ", prose))
    sentences = [
        _WORD.findall(fold(s)) for s in _SENTENCE_END.split(prose) if s and _WORD.search(s)
    ]
    words = [w for s in sentences for w in s]
    total = len(words)
    if total > WINDOW_HEAD + WINDOW_TAIL:
        words = words[:WINDOW_HEAD] + words[-WINDOW_TAIL:]
    return Prepared(
        words=words,
        sentences=sentences,
        prose_words=total,
        context_lines=context_lines,
        ends_question=prose.rstrip(" \t\n)\"'`*").endswith("?"),
        list_items=len(_LIST_ITEM.findall(prose)),
        paths=paths,
        tickets=len(_TICKET.findall(prose)),
    )


def _is_path(match: re.Match[str]) -> bool:
    ext = match.group(2)
    if ext is None:  # a/b: a path unless it is a pair of words like "and/or"
        token = match.group(1)
        return token.endswith("/") or "." in token or token.count("/") >= 2 or "_" in token
    return ext.lower() in lex.FILE_EXTENSIONS


@dataclass(slots=True)
class Signals:
    """Which signals fired, with a detail for the reason text."""

    fired: dict[str, str] = field(default_factory=dict)

    def add(self, name: str, detail: str = "") -> None:
        self.fired.setdefault(name, detail)

    def __contains__(self, name: str) -> bool:
        return name in self.fired


_CLITICS = ("melo", "selo", "nos", "los", "las", "lo", "la", "le", "les", "me")


def is_work(word: str) -> bool:
    """A work verb, also with Spanish object pronouns attached ("arreglalo", "optimizarlo")."""
    if word in lex.WORK_VERBS:
        return True
    for clitic in _CLITICS:
        if word.endswith(clitic) and len(word) - len(clitic) >= 4:
            return word[: -len(clitic)] in lex.WORK_VERBS
    return False


def _core(words: list[str]) -> list[str]:
    """Drop leading fillers ("hey", "ok so", "please") to reach the sentence's head."""
    i = 0
    while i < len(words) - 1 and words[i] in _SKIP_START:
        i += 1
    return words[i:]


def _opener(words: list[str]) -> str | None:
    head = " ".join(words[:8])
    for phrase in lex.POLITE_OPENERS:
        if head == phrase or head.startswith(phrase + " "):
            return phrase
    return None


def _sentence_signals(sentence: list[str], out: Signals) -> None:
    core = _core(sentence)
    if not core:
        return
    first = core[0]
    opener = _opener(core)
    if opener is not None:
        # The first verb after the opener decides; German puts it last ("Kannst du … schreiben?").
        for w in core[len(opener.split()) :][:12]:
            if w in lex.EXPLAIN_VERBS:
                out.add("polite_explain", f"'{opener}' + '{w}'")
                return
            if is_work(w):
                out.add("polite_order", f"'{opener}' + '{w}'")
                return
    if is_work(first):
        out.add("order_first", f"'{first}'")
    elif first in lex.EXPLAIN_VERBS:
        out.add("explain_first", f"'{first}'")
    elif first in lex.QUESTION_WORDS:
        out.add("question_form", f"'{first} …'")


def _phrase_signals(p: Prepared, out: Signals) -> None:
    words = p.words
    work = sorted({w for w in words if is_work(w)})
    if work:
        out.add("mentions_work", ", ".join(work[:4]))
    if len(work) >= 2:
        out.add("several_actions", ", ".join(work[:4]))
    explain = sorted({w for w in words if w in lex.EXPLAIN_VERBS})
    if explain:
        out.add("mentions_explain", ", ".join(explain[:3]))
    _one_shot(words, out)
    for i, w in enumerate(words):
        if w in lex.OWNED:
            for noun in words[i + 1 : i + 4]:
                if noun in lex.SYSTEM_NOUNS:
                    out.add("points_at_system", f"'{w} … {noun}'")
                    break
        if "points_at_system" in out:
            break
    nouns = sorted({w for w in words if w in lex.SYSTEM_NOUNS})
    if nouns:
        out.add("system_words", ", ".join(nouns[:4]))
    scope = sorted({w for w in words if w in lex.SCOPE_WORDS})
    if scope:
        out.add("wide_scope", ", ".join(scope[:3]))
    steps = sum(1 for w in words if w in lex.STEP_WORDS) + p.list_items
    if steps >= 2:
        out.add("several_steps", f"{steps} step markers")
    _small_talk(p, out)


def _small_talk(p: Prepared, out: Signals) -> None:
    words = p.words
    if words and words[0] in lex.GREETINGS:
        out.add("greeting", f"'{words[0]}'")
    if words and p.prose_words <= 8:
        joined = " ".join(words)
        if any(w in lex.HELP_WORDS for w in words) or any(h in joined for h in lex.HELP_PHRASES):
            out.add("help_or_status", "")
        if all(w in lex.CHITCHAT for w in words):
            out.add("small_talk", f"'{joined}'")


_INDEFINITE = frozenset("a an one un una une ein eine einen quick me some".split())


def _one_shot(words: list[str], out: Signals) -> None:
    """ "a regex", "un poema": something one reply produces, unless it is added to existing code."""
    for i, w in enumerate(words):
        if w not in lex.ONE_SHOT_OBJECTS:
            continue
        before = words[max(0, i - 6) : i]
        if any(v in _INDEFINITE for v in before[-3:]) and not any(
            v in lex.MODIFY_VERBS for v in before
        ):
            out.add("one_shot_output", f"'{w}'")
            return


def _ask_signals(p: Prepared, out: Signals) -> None:
    """The last sentence is usually the ask: is it a question or an order?"""
    if len(p.sentences) < 2:
        return
    last = _core(p.sentences[-1])
    if not last:
        return
    probe = Signals()
    _sentence_signals(last, probe)
    if (
        "question_form" in probe
        or "polite_explain" in probe
        or (p.ends_question and "polite_order" not in probe and "order_first" not in probe)
    ):
        out.add("ask_is_question")
    elif "order_first" in probe or "polite_order" in probe:
        out.add("ask_is_order", next(iter(probe.fired.values())))


def _shape_signals(p: Prepared, out: Signals) -> None:
    n = p.prose_words
    bucket = (
        "len_1_2" if n <= 2 else "len_3_5" if n <= 5 else "len_6_12" if n <= 12 else
        "len_13_30" if n <= 30 else "len_31_80" if n <= 80 else "len_81_plus"
    )  # fmt: skip
    out.add(bucket, f"{n} words")
    if p.ends_question:
        out.add("ends_with_question_mark")
    if p.context_lines >= 2:
        out.add("pasted_context", f"{p.context_lines} lines")
        last = p.sentences[-1] if p.sentences else []
        if p.ends_question or (_core(last)[:1] and _core(last)[0] in lex.QUESTION_WORDS):
            out.add("context_then_question")
    if p.paths:
        out.add("names_files", ", ".join(p.paths[:3]))
    if p.tickets:
        out.add("names_tickets", f"{p.tickets}")


def signals(p: Prepared) -> Signals:
    """Every signal that fires on a prepared request."""
    out = Signals()
    for sentence in p.sentences[:3] + p.sentences[-2:]:
        _sentence_signals(sentence, out)
    _phrase_signals(p, out)
    _ask_signals(p, out)
    _shape_signals(p, out)
    return out
