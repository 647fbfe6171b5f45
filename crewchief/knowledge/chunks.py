"""Cutting a file into search chunks that follow its structure.

Code is cut at its definitions, found by the same parsers as ``extract_symbols`` (Python's
``ast``; tree-sitter for JavaScript, TypeScript, Rust and Go): a function, or a class that
fits, is one chunk; a class too big for one is cut into its methods, its header (signature,
docstring, attributes) staying a chunk of its own. The decorators and comments right above a
definition belong to it. Lines between definitions (imports, constants) make chunks of
their own. Markdown is cut at its headings. Anything cut this way that is still larger than
the chunk size, and every other text file, is cut into runs of whole lines.

Sizes are counted in tiktoken tokens (``o200k_base``), so a chunk is what a model would
read, whatever the language.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from crewchief.models.tokens import DEFAULT_ENCODING, get_encoding
from crewchief.tools import languages, symbols
from crewchief.tools._fs import ToolError

DEFAULT_CHUNK_TOKENS = 400
# Lines above a definition that belong to it: decorators, attributes and comments.
_LEADING = ("@", "#", "//", "/*", "*", "--")
_HEADING = re.compile(r"^(#{1,6})[ \t]+(.+?)[ \t#]*$")
_FENCE = re.compile(r"^[ \t]*(```|~~~)")


@dataclass(frozen=True, slots=True)
class Chunk:
    """One piece of a file: where it is, which definition it belongs to, and its text.

    ``symbol`` is the definition's qualified name (``Client.send``), a document's heading
    path (``Install > Docker``), or empty for lines outside any definition; ``kind`` is
    the definition's kind (``function``, ``class``, ``method``, ...), ``section`` for a
    document, ``module`` for lines between definitions and ``lines`` for a file without
    structure.
    """

    path: str
    start: int  # first line, 1-based
    end: int  # last line, inclusive
    symbol: str
    kind: str
    text: str


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int
    symbol: str
    kind: str


class _Lines:
    """A file's lines and their token counts."""

    def __init__(self, text: str):
        self.lines = text.splitlines()
        encode = get_encoding(DEFAULT_ENCODING).encode_ordinary
        self.tokens = [len(encode(line)) + 1 if line else 1 for line in self.lines]  # + newline

    def count(self, start: int, end: int) -> int:
        return sum(self.tokens[start - 1 : end])

    def blank(self, start: int, end: int) -> bool:
        return not any(line.strip() for line in self.lines[start - 1 : end])

    def text(self, start: int, end: int) -> str:
        return "\n".join(self.lines[start - 1 : end])


def chunk_file(path: str, text: str, max_tokens: int = DEFAULT_CHUNK_TOKENS) -> list[Chunk]:
    """The chunks of one file (``path`` as shown, relative to its workspace), in order."""
    lines = _Lines(text)
    n = len(lines.lines)
    if n == 0:
        return []
    language = languages.detect(path, lines.lines[0])
    if path.lower().endswith((".md", ".markdown")):
        spans = list(_sections(lines.lines))
    elif language.parser is not None:
        spans = _definitions(lines, language, max_tokens)
    else:
        spans = [_Span(1, n, "", "lines")]
    chunks = []
    for span in spans:
        for start, end in _fit(lines, span.start, span.end, max_tokens):
            while start <= end and not lines.lines[start - 1].strip():
                start += 1
            while end >= start and not lines.lines[end - 1].strip():
                end -= 1
            if start <= end:
                text_ = lines.text(start, end)
                chunks.append(Chunk(path, start, end, span.symbol, span.kind, text_))
    return chunks


def _fit(lines: _Lines, start: int, end: int, max_tokens: int) -> Iterator[tuple[int, int]]:
    """``start..end`` as runs of whole lines of at most ``max_tokens`` each (a single longer
    line is a run of its own)."""
    if lines.count(start, end) <= max_tokens:
        yield start, end
        return
    run_start, used = start, 0
    for number in range(start, end + 1):
        cost = lines.tokens[number - 1]
        if used and used + cost > max_tokens:
            yield run_start, number - 1
            run_start, used = number, 0
        used += cost
    yield run_start, end


def _definitions(lines: _Lines, language: languages.Language, max_tokens: int) -> list[_Span]:
    try:
        found, _note = symbols.extract("\n".join(lines.lines), language)
    except (ToolError, RecursionError):
        return [_Span(1, len(lines.lines), "", "lines")]
    found = _with_ends(found, len(lines.lines))
    spans: list[_Span] = []
    _cover(lines, 1, len(lines.lines), found, 0, "", "module", max_tokens, spans)
    return spans


def _with_ends(found: list[symbols.Symbol], n: int) -> list[symbols.Symbol]:
    """Symbols with an end line (a parser that could not give one: up to the next
    definition at the same depth or above)."""
    out = []
    for i, sym in enumerate(found):
        end = sym.end
        if end < sym.line:
            nxt = next((s.line for s in found[i + 1 :] if s.depth <= sym.depth), n + 1)
            end = max(sym.line, nxt - 1)
        out.append(
            symbols.Symbol(sym.line, sym.depth, sym.kind, sym.name, sym.signature, min(end, n))
        )
    return out


def _cover(
    lines: _Lines,
    lo: int,
    hi: int,
    found: list[symbols.Symbol],
    depth: int,
    prefix: str,
    gap_kind: str,
    max_tokens: int,
    out: list[_Span],
) -> None:
    """Spans for lines ``lo..hi``: each definition at ``depth`` one span (or cut at its
    own definitions when too big), the lines between them spans of ``gap_kind``."""
    gap_symbol = prefix.rstrip(".")
    pos = lo
    for sym in found:
        if sym.depth != depth or sym.line < pos or sym.line > hi:
            continue
        start = _lead(lines.lines, sym.line, pos)
        end = min(sym.end, hi)
        if start > pos and not lines.blank(pos, start - 1):
            out.append(_Span(pos, start - 1, gap_symbol, gap_kind))
        name = prefix + sym.name if sym.name else gap_symbol
        inner = [s for s in found if s.depth == depth + 1 and sym.line < s.line <= end]
        if inner and lines.count(start, end) > max_tokens:
            _cover(lines, start, end, found, depth + 1, name + ".", sym.kind, max_tokens, out)
        else:
            out.append(_Span(start, end, name, sym.kind))
        pos = end + 1
    if pos <= hi and not lines.blank(pos, hi):
        out.append(_Span(pos, hi, gap_symbol, gap_kind))


def _lead(lines: list[str], line: int, floor: int) -> int:
    """The first line of a definition starting at ``line``: decorators and comments right
    above it are part of it (never above ``floor``)."""
    start = line
    while start > floor and lines[start - 2].lstrip().startswith(_LEADING):
        start -= 1
    return start


def _sections(lines: list[str]) -> Iterator[_Span]:
    """A Markdown document's sections, each named by its heading path."""
    path: list[tuple[int, str]] = []  # (level, title) of the headings above
    start, name, fenced = 1, "", False
    for number, line in enumerate(lines, 1):
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match is None:
            continue
        if number > start:
            yield _Span(start, number - 1, name, "section")
        level, title = len(match.group(1)), match.group(2).strip()
        path = [(lv, t) for lv, t in path if lv < level] + [(level, title)]
        start, name = number, " > ".join(t for _, t in path)
    yield _Span(start, len(lines), name, "section")
