"""File tools confined to one workspace root.

Every path a model gives is resolved against the root, following symlinks,
and refused when the result leaves the root. Reads are limited to regular
text files under a size limit, opened without blocking (see ``_fs``); writes
are atomic (temporary file, fsync, rename), create parent folders, and never
touch ``.git``. Walks (list, grep, count, extract) respect ``.gitignore`` files
and never follow a symlink out of the root (see ``_walk``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from crewchief._atomic import atomic_write
from crewchief.tools import counting, languages, summarize, symbols
from crewchief.tools._fs import ToolError, is_binary, read_bytes, read_text, split_lines
from crewchief.tools._walk import Entry, check_pattern, is_glob, walk
from crewchief.tools.grep import GrepLimits, grep

__all__ = ["MAX_FILE_BYTES", "MAX_LIST", "CodeSearcher", "ToolError", "Workspace"]

# Answers search_code for a workspace: (query, k, glob) -> text for the model. Hybrid code
# search lives above the file tools; the node that opens a workspace hands one in.
CodeSearcher = Callable[[str, int, "str | None"], str]

MAX_FILE_BYTES = 1_000_000
MAX_LIST = 500
MAX_MATCHES = 100
GREP_TIMEOUT = 1.0
MAX_GREP_FILES = 5000
MAX_SYMBOLS = 400
MAX_SYMBOL_FILES = 50
MAX_ROWS = 100
MAX_SEARCH_HITS = 20
MAX_WALK_FILES = 5000  # files count_lines and extract_symbols gather from folders and globs
_MAX_PROBLEMS = 5


@dataclass(frozen=True, slots=True)
class Workspace:
    """The folder an operation may read and change, and the bounds of each tool."""

    root: Path
    max_file_bytes: int = MAX_FILE_BYTES
    max_list: int = MAX_LIST
    max_matches: int = MAX_MATCHES
    grep_timeout: float = GREP_TIMEOUT
    max_symbols: int = MAX_SYMBOLS
    max_rows: int = MAX_ROWS
    searcher: CodeSearcher | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        # Containment checks compare real paths, so the root must be one too.
        object.__setattr__(self, "root", Path(os.path.realpath(self.root)))

    @classmethod
    def open(cls, root: str | Path, searcher: CodeSearcher | None = None) -> Workspace:
        """The workspace at ``root``, which must be an existing folder (``searcher``: what
        answers ``search_code``; None: the tool says that code search is off)."""
        path = Path(root).expanduser().resolve()
        if not path.is_dir():
            raise ToolError(f"workspace {root} is not a directory")
        return cls(path, searcher=searcher)

    def resolve(self, path: str, *, for_write: bool = False) -> Path:
        """The real path for ``path`` (relative to the root, or absolute inside it).

        Raises:
            ToolError: empty, NUL bytes, outside the root (directly, by ``..`` or
                through a symlink), or a write into ``.git``.
        """
        if not isinstance(path, str) or not path.strip():
            raise ToolError("path must be a non-empty string relative to the workspace")
        if "\x00" in path:
            raise ToolError("path contains a NUL byte")
        try:
            path.encode("utf-8")
        except UnicodeError:
            raise ToolError("path is not valid UTF-8 text") from None
        candidate = Path(path)
        full = candidate if candidate.is_absolute() else self.root / candidate
        real = Path(os.path.realpath(full))
        if real != self.root and self.root not in real.parents:
            raise ToolError(f"{path} is outside the workspace")
        relative = real.relative_to(self.root)
        if for_write and ".git" in relative.parts:
            raise ToolError(f"{path}: writing inside .git is not allowed")
        return real

    def display(self, real: Path) -> str:
        """``real`` relative to the root, with ``/`` separators (``.`` for the root)."""
        return str(PurePosixPath(real.relative_to(self.root)))

    def read_file(
        self, path: str, start_line: int | None = None, end_line: int | None = None
    ) -> str:
        """The text of a file, or only lines ``start_line..end_line`` (1-based, inclusive)."""
        for name, value in (("start_line", start_line), ("end_line", end_line)):
            if value is not None and value < 1:
                raise ToolError(f"read_file: {name} must be 1 or more (lines count from 1)")
        text = read_text(self.resolve(path), path, self.max_file_bytes)
        if start_line is None and end_line is None:
            return text
        lines = split_lines(text)
        first = start_line or 1
        last = min(len(lines), end_line or len(lines))
        if first > last:
            raise ToolError(f"{path} has {len(lines)} lines; {first}..{last} is empty")
        return "\n".join(lines[first - 1 : last])

    def write_file(self, path: str, content: str) -> str:
        """Create or replace a file atomically; parent folders are created."""
        if not isinstance(content, str):
            raise ToolError("content must be a string")
        try:
            data = content.encode("utf-8")
        except UnicodeError:
            raise ToolError("content is not valid UTF-8 text") from None
        if len(data) > self.max_file_bytes:
            raise ToolError(f"content is {len(data):,} bytes; the limit is {self.max_file_bytes:,}")
        real = self.resolve(path, for_write=True)
        if real.exists() and not real.is_file():
            raise ToolError(f"{path} exists and is not a regular file")
        real.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(real, data)
        lines = content.count("\n") + (0 if content.endswith("\n") or not content else 1)
        return f"wrote {self.display(real)} ({len(data):,} bytes, {lines} lines)"

    def list_files(self, pattern: str = "**/*") -> str:
        """Files matching a glob, one per line, sorted; bounded by ``max_list``."""
        pattern = self._glob(pattern, "pattern")
        found: list[str] = []
        truncated = False
        for entry in walk(self.root, pattern):
            if len(found) == self.max_list:
                truncated = True
                break
            found.append(entry.rel)
        if not found:
            return f"no files match {pattern!r}"
        more = f"\n(stopped at {self.max_list} files; narrow the pattern)" if truncated else ""
        return "\n".join(sorted(found)) + more

    def grep_files(
        self, pattern: str, glob: str | None = None, context: int = 0, ignore_case: bool = False
    ) -> str:
        """Lines matching a regex in the files matching ``glob``, as ``path:line: text``."""
        files = _unique(walk(self.root, self._glob(glob or "", "glob")))
        limits = GrepLimits(
            max_matches=self.max_matches,
            max_files=MAX_GREP_FILES,
            max_file_bytes=self.max_file_bytes,
            timeout=self.grep_timeout,
        )
        return grep(files, pattern, context=context, ignore_case=ignore_case, limits=limits)

    def summarize_file(self, path: str) -> str:
        """Size, lines, language, imports, classes, functions, TODOs, first and last lines."""
        real = self.resolve(path)
        data = read_bytes(real, path, self.max_file_bytes)
        if is_binary(data):
            raise ToolError(f"{path} is a binary file")
        text = data.decode("utf-8", errors="replace")
        shown = self.display(real)
        return summarize.summarize(shown, text, len(data), _language(shown, text))

    def extract_symbols(self, path: str) -> str:
        """Definitions (line, signature, nesting) of a file, or of the files of a glob or folder."""
        report = _SymbolReport(self.max_symbols)
        if not is_glob(path):
            real = self.resolve(path)
            if not real.is_dir():
                shown = self.display(real)
                text = read_text(real, path, self.max_file_bytes)
                report.add(shown, *symbols.extract(text, _language(shown, text)))
                return report.render()
        problems: list[str] = []
        files, _ = self._targets([path], "path", MAX_WALK_FILES, problems)
        supported = [e for e in files if languages.detect(e.rel).parser]
        if not supported:
            names = ", ".join(languages.with_parser())
            reason = "; ".join(problems) or f"no files of a supported language ({names})"
            raise ToolError(f"extract_symbols: {reason} in {path!r}")
        for entry in supported[:MAX_SYMBOL_FILES]:
            try:
                text = read_text(entry.real, entry.rel, self.max_file_bytes)
                found, note = symbols.extract(text, _language(entry.rel, text))
            except ToolError as exc:
                problems.append(str(exc))
                continue
            if not report.add(entry.rel, found, note):
                break
        if len(supported) > MAX_SYMBOL_FILES:
            report.notes.append(f"(read the first {MAX_SYMBOL_FILES} of {len(supported)} files)")
        report.notes += _problems(problems)
        return report.render()

    def search_code(self, query: str, k: int = 8, glob: str | None = None) -> str:
        """The places that best answer ``query``, from the workspace's code index."""
        if not query.strip():
            raise ToolError("search_code: query must not be empty")
        if not 1 <= k <= MAX_SEARCH_HITS:
            raise ToolError(f"search_code: k must be from 1 to {MAX_SEARCH_HITS}, got {k}")
        if glob is not None:
            glob = check_pattern(glob, "glob")
        if self.searcher is None:
            raise ToolError(
                "search_code is off here (knowledge.code_search); use grep_files with a "
                "word or identifier you expect in the code"
            )
        return self.searcher(query.strip(), k, glob or None)

    def count_lines(self, paths: str | list[str]) -> str:
        """Lines, code, comment and blank lines per file, per language and in total."""
        specs = [paths] if isinstance(paths, str) else list(paths)
        if not specs or not all(isinstance(s, str) and s.strip() for s in specs):
            raise ToolError(
                "count_lines: paths must be one or more non-empty strings "
                "(file paths, folders or globs)"
            )
        table = counting.Table(max_rows=self.max_rows)
        problems: list[str] = []
        unreadable = 0
        files, truncated = self._targets(specs, "paths", MAX_WALK_FILES, problems)
        for entry in files:
            try:
                text = read_text(entry.real, entry.rel, self.max_file_bytes)
            except (ToolError, OSError) as exc:
                # Binary files found by a walk are expected; a named file deserves a reason.
                if entry.named:
                    problems.append(
                        str(exc) if isinstance(exc, ToolError) else f"{entry.rel}: {exc}"
                    )
                else:
                    unreadable += 1
                continue
            language = _language(entry.rel, text)
            table.add(entry.rel, language, counting.count_text(text, language))
        if not table.total.files:
            problems = problems or [f"{unreadable} binary or oversized files"]
            raise ToolError("count_lines found nothing to count: " + "; ".join(problems))
        out = [table.render()]
        if truncated:
            out.append(f"(stopped at {MAX_WALK_FILES} files; the totals cover those)")
        if unreadable:
            out.append(f"(skipped {unreadable} binary, oversized or unreadable files)")
        out += _problems(problems)
        return "\n".join(out)

    def _glob(self, pattern: str, argument: str) -> str:
        """A checked glob; a folder's name (``src``, ``src/``) stands for everything in it."""
        pattern = check_pattern(pattern, argument) or "**/*"
        if not is_glob(pattern) and (self.root / pattern).is_dir():
            return pattern.rstrip("/") + "/**"
        return pattern

    def _targets(
        self, specs: Iterable[str], argument: str, limit: int, problems: list[str]
    ) -> tuple[list[Entry], bool]:
        """The files named by paths, folders and globs, each once; True when cut at ``limit``."""
        seen: set[Path] = set()
        files: list[Entry] = []
        for spec in specs:
            matched = False
            try:
                for entry in self._expand(spec.strip(), argument):
                    matched = True
                    if entry.real in seen:
                        continue
                    if len(files) == limit:
                        return files, True
                    seen.add(entry.real)
                    files.append(entry)
            except ToolError as exc:
                problems.append(str(exc))
                continue
            if not matched and is_glob(spec):
                problems.append(f"no files match {spec!r}")
        return files, False

    def _expand(self, spec: str, argument: str) -> Iterator[Entry]:
        if is_glob(spec):
            yield from walk(self.root, check_pattern(spec, argument))
            return
        real = self.resolve(spec)
        if real.is_dir():
            start = "" if real == self.root else self.display(real)
            yield from walk(self.root, "**/*", start=start)
            return
        yield Entry(self.display(real), real, named=True)


@dataclass(slots=True)
class _SymbolReport:
    """The symbols of one or more files, at most ``limit`` symbol lines in all."""

    limit: int
    lines: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    count: int = 0

    def add(self, shown: str, found: list[symbols.Symbol], note: str | None) -> bool:
        """Add one file's symbols; False once the limit is reached."""
        room = self.limit - self.count
        if room <= 0 and found:
            return self._stop()
        self.lines.append(f"{shown}:" if found else f"{shown}: no definitions found")
        self.lines += [symbol.render() for symbol in found[:room]]
        self.count += min(room, len(found))
        if note:
            self.lines.append(f"({note})")
        if len(found) > room:
            return self._stop()
        return True

    def _stop(self) -> bool:
        self.notes.append(f"(stopped at {self.limit} symbols; ask for one file, or fewer files)")
        return False

    def render(self) -> str:
        return "\n".join(self.lines + self.notes)


def _language(shown: str, text: str) -> languages.Language:
    """The language of a file by its name, else by its first line (a ``#!`` line)."""
    return languages.detect(shown, text[:200].split("\n", 1)[0])


def _unique(entries: Iterable[Entry]) -> Iterator[Entry]:
    """Each real file once: a symlink inside the root is not searched twice."""
    seen: set[Path] = set()
    for entry in entries:
        if entry.real not in seen:
            seen.add(entry.real)
            yield entry


def _problems(problems: list[str]) -> list[str]:
    if not problems:
        return []
    shown = "; ".join(problems[:_MAX_PROBLEMS])
    more = f"; +{len(problems) - _MAX_PROBLEMS} more" if len(problems) > _MAX_PROBLEMS else ""
    return [f"skipped: {shown}{more}"]
