"""``count_lines``: lines, code, comment and blank lines per file, per language, in total.

A line is blank when it holds only whitespace, a comment when everything on it
is comment (line comments and block comments, per language), and code otherwise.
String literals are skipped so a ``#`` or ``/*`` inside one is not a comment;
Python docstrings and other multi-line strings count as code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from crewchief.tools._fs import split_lines
from crewchief.tools.languages import Language

_HEADER = f"{'lines':>7} {'code':>7} {'comment':>7} {'blank':>7}  path"


@dataclass(slots=True)
class Counts:
    """Line counts of one file or of several added up."""

    files: int = 0
    code: int = 0
    comment: int = 0
    blank: int = 0

    @property
    def lines(self) -> int:
        return self.code + self.comment + self.blank

    def add(self, other: Counts) -> None:
        self.files += other.files
        self.code += other.code
        self.comment += other.comment
        self.blank += other.blank


# Multi-line strings are code, but a comment marker inside one is not a comment.
_CODE_BLOCKS: dict[str, tuple[tuple[str, str], ...]] = {
    "Python": (('"""', '"""'), ("'''", "'''")),
    "JavaScript": (("`", "`"),),
    "TypeScript": (("`", "`"),),
    "TSX": (("`", "`"),),
    "Go": (("`", "`"),),
}
# Quotes of one-line strings; Rust's ' also starts lifetimes, so only " counts there.
_QUOTES: dict[str, str] = {"Rust": '"', "HTML": "", "Markdown": "", "Text": ""}


@dataclass(frozen=True, slots=True)
class _Syntax:
    token: re.Pattern[str]  # the next comment marker, block opener or quote
    line_comments: frozenset[str]
    blocks: dict[str, tuple[str, bool]]  # opener -> (closer, is_comment)
    strings: dict[str, re.Pattern[str]]  # quote -> rest of the string, closing quote included


@lru_cache(maxsize=64)
def _syntax(language: Language) -> _Syntax | None:
    blocks = {start: (end, True) for start, end in language.block_comments}
    blocks.update({start: (end, False) for start, end in _CODE_BLOCKS.get(language.name, ())})
    quotes = _QUOTES.get(language.name, "\"'")
    markers = [*language.line_comments, *blocks, *quotes]
    if not language.line_comments and not language.block_comments:
        return None
    # Longest first, so ''' wins over ' and --[[ over --.
    alternation = "|".join(re.escape(m) for m in sorted(markers, key=len, reverse=True))
    strings = {q: re.compile(rf"(?:\\.|[^{re.escape(q)}\\])*{re.escape(q)}") for q in quotes}
    return _Syntax(re.compile(alternation), frozenset(language.line_comments), blocks, strings)


def count_text(text: str, language: Language) -> Counts:
    """The line counts of one file's text."""
    counts = Counts(files=1)
    syntax = _syntax(language)
    open_block: tuple[str, bool] | None = None
    for line in split_lines(text):
        stripped = line.strip()
        if not stripped:
            counts.blank += 1
            continue
        if syntax is None:
            counts.code += 1
            continue
        inside_code_block = open_block is not None and not open_block[1]
        has_code, open_block = _scan(stripped, syntax, open_block)
        if has_code or inside_code_block:
            counts.code += 1
        else:
            counts.comment += 1
    return counts


def _scan(
    line: str, syntax: _Syntax, open_block: tuple[str, bool] | None
) -> tuple[bool, tuple[str, bool] | None]:
    """Whether ``line`` holds code, and the block still open at its end."""
    has_code = False
    pos = 0
    while pos < len(line):
        if open_block is not None:
            end, is_comment = open_block
            close = line.find(end, pos)
            has_code = has_code or not is_comment
            if close < 0:
                return has_code, open_block
            pos, open_block = close + len(end), None
            continue
        found = syntax.token.search(line, pos)
        if found is None:
            return has_code or bool(line[pos:].strip()), None
        has_code = has_code or bool(line[pos : found.start()].strip())
        marker = found.group()
        if marker in syntax.line_comments:
            return has_code, None
        if marker in syntax.blocks:
            open_block = syntax.blocks[marker]
            pos = found.end()
            continue
        has_code = True  # a quote: skip the string, which may run to the end of the line
        rest = syntax.strings[marker].match(line, found.end())
        if rest is None:
            return True, None
        pos = rest.end()
    return has_code, open_block


@dataclass(slots=True)
class Table:
    """Rows of per-file counts, bounded, with exact totals per language and overall."""

    max_rows: int
    rows: list[tuple[str, Counts]] = field(default_factory=list)
    hidden: int = 0
    by_language: dict[str, Counts] = field(default_factory=dict)
    total: Counts = field(default_factory=Counts)

    def add(self, path: str, language: Language, counts: Counts) -> None:
        if len(self.rows) < self.max_rows:
            self.rows.append((path, counts))
        else:
            self.hidden += 1
        self.by_language.setdefault(language.name, Counts()).add(counts)
        self.total.add(counts)

    def render(self) -> str:
        out = [_HEADER]
        out += [_row(c, path) for path, c in self.rows]
        if self.hidden:
            out.append(f"(+{self.hidden} more files not shown; the totals include them)")
        if len(self.by_language) > 1:
            ranked = sorted(self.by_language.items(), key=lambda item: -item[1].lines)
            out += [_row(c, f"{name} ({_files(c.files)})") for name, c in ranked]
        out.append(_row(self.total, f"total ({_files(self.total.files)})"))
        return "\n".join(out)


def _row(c: Counts, label: str) -> str:
    return f"{c.lines:>7} {c.code:>7} {c.comment:>7} {c.blank:>7}  {label}"


def _files(n: int) -> str:
    return "1 file" if n == 1 else f"{n} files"
