"""``grep_files``: a regex search over the files of a workspace, like ``grep -rn -C``.

Patterns use the ``regex`` package, whose ``timeout=`` stops a match that
backtracks catastrophically (``(a+)+$`` against a long run of a's): the whole
call gets one time budget for matching, and running out of it is an error that
tells the model to simplify the pattern. Binary and oversized files are skipped
and counted; matches are bounded, with a note when the search stopped early.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field

import regex

from crewchief.tools._fs import ToolError, is_binary, read_bytes, split_lines
from crewchief.tools._walk import Entry

MAX_CONTEXT = 10
_MAX_LINE = 200  # characters of one shown line


@dataclass(frozen=True, slots=True)
class GrepLimits:
    """Bounds of one search."""

    max_matches: int = 100
    max_files: int = 5000
    max_file_bytes: int = 1_000_000
    timeout: float = 1.0  # seconds of matching for the whole call


@dataclass(slots=True)
class _Search:
    compiled: regex.Pattern[str]
    limits: GrepLimits
    context: int
    deadline: float
    out: list[str] = field(default_factory=list)
    matches: int = 0
    files: int = 0
    skipped: int = 0


def compile_pattern(pattern: str, *, ignore_case: bool) -> regex.Pattern[str]:
    """The compiled pattern, or a ToolError with the regex engine's own complaint."""
    if not pattern:
        raise ToolError("grep_files: pattern must be a non-empty regular expression")
    flags = regex.MULTILINE | (regex.IGNORECASE if ignore_case else 0)
    try:
        return regex.compile(pattern, flags)
    except regex.error as exc:
        raise ToolError(f"grep_files: pattern is not a valid regular expression: {exc}") from None


def grep(
    entries: Iterable[Entry],
    pattern: str,
    *,
    context: int = 0,
    ignore_case: bool = False,
    limits: GrepLimits | None = None,
) -> str:
    """``path:line: text`` for each matching line (context lines as ``path-line- text``).

    Raises:
        ToolError: the pattern is invalid, or matching took longer than the time budget.
    """
    if not 0 <= context <= MAX_CONTEXT:
        raise ToolError(f"grep_files: context must be between 0 and {MAX_CONTEXT}")
    compiled = compile_pattern(pattern, ignore_case=ignore_case)
    limits = limits or GrepLimits()
    search = _Search(compiled, limits, context, time.monotonic() + limits.timeout)
    stopped = ""
    for entry in entries:
        if search.files == limits.max_files:
            stopped = f"(searched the first {limits.max_files} files; narrow the glob)"
            break
        search.files += 1
        if not _search_file(search, entry):
            stopped = f"(stopped at {limits.max_matches} matches; narrow the pattern or glob)"
            break
    return _report(search, pattern, stopped)


def _search_file(search: _Search, entry: Entry) -> bool:
    """Add the matches of one file; False once the match bound is reached."""
    try:
        data = read_bytes(entry.real, entry.rel, search.limits.max_file_bytes)
    except (ToolError, OSError):
        search.skipped += 1
        return True
    if is_binary(data):
        search.skipped += 1
        return True
    text = data.decode("utf-8", errors="replace")
    lines = _matching_lines(search, text)
    if lines:
        _show(search, entry.rel, split_lines(text), lines)
    return search.matches < search.limits.max_matches


def _matching_lines(search: _Search, text: str) -> list[int]:
    """0-based numbers of the lines holding a match, at most as many as the bound allows."""
    wanted = search.limits.max_matches - search.matches
    found: list[int] = []
    line, pos = 0, 0  # ``line`` is the number of the line starting at ``pos``
    try:
        while len(found) < wanted:
            remaining = search.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            match = search.compiled.search(text, pos, timeout=remaining)
            if match is None:
                break
            line += text.count("\n", pos, match.start())
            found.append(line)
            # One hit per line is enough: go on from the next line, so a pattern that
            # matches everywhere (``x*``) costs one search per line, not one per character.
            end_of_line = text.find("\n", match.start())
            if end_of_line < 0:
                break
            pos, line = end_of_line + 1, line + 1
    except TimeoutError:
        raise ToolError(
            f"grep_files: the pattern took longer than {search.limits.timeout:g} s to match "
            "(likely catastrophic backtracking, e.g. nested repeats like (a+)+); "
            "simplify the pattern or narrow the glob"
        ) from None
    search.matches += len(found)
    return found


def _show(search: _Search, rel: str, lines: list[str], hits: list[int]) -> None:
    """Append the hits of one file with their context, groups separated by ``--``."""
    hit_set = set(hits)
    last = -2
    for hit in hits:
        first = max(0, hit - search.context, last + 1)
        if search.context and search.out and first > last + 1:
            search.out.append("--")
        for number in range(first, min(len(lines), hit + search.context + 1)):
            mark = ":" if number in hit_set else "-"
            search.out.append(f"{rel}{mark}{number + 1}{mark} {_clip(lines[number])}")
            last = number


def _report(search: _Search, pattern: str, stopped: str) -> str:
    notes = [stopped] if stopped else []
    if search.skipped:
        notes.append(f"(skipped {search.skipped} binary or oversized files)")
    if not search.out:
        head = f"no matches for {pattern!r} in {search.files} files"
        return "\n".join([head, *notes])
    return "\n".join([*search.out, *notes])


def _clip(line: str) -> str:
    line = line.rstrip()
    return line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 1] + "…"
