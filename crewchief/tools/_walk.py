"""Walking the files of a workspace: globs, ``.gitignore`` files, and symlinks.

A walk never follows a directory symlink, lists a symlinked file only when its
target is a regular file inside the root, and never lists FIFOs, devices or
sockets. Folders in :data:`SKIP_DIRS` and anything a ``.gitignore`` (the root's
or a nested one, with git's rules via ``pathspec``) ignores are left out.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pathspec

from crewchief.tools._fs import ToolError, read_bytes

SKIP_DIRS = frozenset(
    {".git", "__pycache__", "node_modules", ".venv", ".mypy_cache", ".pytest_cache", ".ruff_cache"}
)
_GLOB_CHARS = re.compile(r"[*?\[]")
# A .gitignore larger than this is not a real one; it is skipped rather than parsed.
_MAX_GITIGNORE_BYTES = 256_000


@dataclass(frozen=True, slots=True)
class Entry:
    """One file found by a walk."""

    rel: str  # relative to the root, with "/" separators, as shown to the model
    real: Path  # the file to open (a symlink's target inside the root)
    link: bool = False
    named: bool = False  # named by the caller, not found by a walk


def is_glob(text: str) -> bool:
    """Whether ``text`` holds glob characters (``*``, ``?``, ``[``)."""
    return bool(_GLOB_CHARS.search(text))


def check_pattern(pattern: str, argument: str = "pattern") -> str:
    """``pattern`` stripped, or a ToolError when it is not a glob inside the workspace."""
    pattern = pattern.strip()
    while pattern.startswith("./"):
        pattern = pattern[2:]
    if pattern == ".":
        pattern = "**/*"
    if "\x00" in pattern:
        raise ToolError(f"{argument} contains a NUL byte")
    pure = PurePosixPath(pattern)
    if pure.is_absolute() or ".." in pure.parts:
        raise ToolError(f"{argument} must be relative to the workspace and stay inside it")
    return pattern


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob anchored at the workspace root, as a compiled regex.

    ``*`` stays within one folder, ``**/`` spans any number of folders (including
    none), a trailing ``**`` everything below. A pattern without a folder part
    (``*.py``) matches at any depth, like ``**/*.py``.
    """
    if "/" not in pattern and pattern != "**":
        pattern = "**/" + pattern
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def literal_prefix(pattern: str) -> str:
    """The folders at the start of a glob that hold no glob characters (may be "")."""
    parts = PurePosixPath(pattern).parts[:-1]
    kept: list[str] = []
    for part in parts:
        if is_glob(part):
            break
        kept.append(part)
    return "/".join(kept)


class _Ignores:
    """The ``.gitignore`` rules met so far, keyed by the folder that holds them."""

    def __init__(self) -> None:
        self._specs: dict[str, pathspec.GitIgnoreSpec] = {}

    def load(self, folder: Path, rel: str) -> None:
        path = folder / ".gitignore"
        try:
            # Only a regular file (opened without following a symlink or blocking on a FIFO).
            data = read_bytes(path, ".gitignore", _MAX_GITIGNORE_BYTES)
        except (ToolError, OSError):
            return
        lines = data.decode("utf-8", errors="replace").splitlines()
        self._specs[rel] = pathspec.GitIgnoreSpec.from_lines(lines)

    def ignored(self, rel: str, is_dir: bool) -> bool:
        """Whether ``rel`` is ignored; a deeper ``.gitignore`` overrides a shallower one."""
        probe = rel + "/" if is_dir else rel
        parts = rel.split("/")
        for depth in range(len(parts) - 1, -1, -1):
            base = "/".join(parts[:depth])
            spec = self._specs.get(base)
            if spec is None:
                continue
            result = spec.check_file(probe[len(base) + 1 :] if base else probe)
            if result.include is not None:
                return bool(result.include)
        return False


def walk(root: Path, pattern: str = "**/*", *, start: str | None = None) -> Iterator[Entry]:
    """Files under ``root`` matching ``pattern``, folder by folder in name order.

    Args:
        root: The workspace root (a real path).
        pattern: A glob anchored at the root (see :func:`glob_regex`).
        start: A folder (relative to the root) to walk instead of the whole root;
            by default the glob's literal folder prefix. A start folder reached
            through a symlink yields nothing.
    """
    matcher = glob_regex(pattern)
    start = literal_prefix(pattern) if start is None else start.strip("/")
    top = root / start if start else root
    if start and os.path.realpath(top) != str(top):
        return  # walks never follow directory symlinks, not even at the top
    if not top.is_dir():
        return
    ignores = _Ignores()
    ignores.load(root, "")
    parts = start.split("/") if start else []
    for depth in range(1, len(parts) + 1):
        ignores.load(root.joinpath(*parts[:depth]), "/".join(parts[:depth]))
    for dirpath, dirnames, filenames in os.walk(top):
        here = Path(dirpath)
        rel_dir = str(PurePosixPath(here.relative_to(root)))
        rel_dir = "" if rel_dir == "." else rel_dir
        if here != top:
            ignores.load(here, rel_dir)
        dirnames[:] = sorted(d for d in dirnames if _keep_dir(here, rel_dir, d, ignores))
        for name in sorted(filenames):
            rel = f"{rel_dir}/{name}" if rel_dir else name
            if not matcher.fullmatch(rel) or ignores.ignored(rel, is_dir=False):
                continue
            entry = _file_entry(root, here / name, rel)
            if entry is not None:
                yield entry


def _keep_dir(here: Path, rel_dir: str, name: str, ignores: _Ignores) -> bool:
    if name in SKIP_DIRS or (here / name).is_symlink():
        return False
    return not ignores.ignored(f"{rel_dir}/{name}" if rel_dir else name, is_dir=True)


def _file_entry(root: Path, path: Path, rel: str) -> Entry | None:
    """The entry for ``path``, or None for a symlink leaving the root or a non-regular file."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    if stat.S_ISREG(st.st_mode):
        return Entry(rel, path, link=False)
    if not stat.S_ISLNK(st.st_mode):
        return None  # FIFOs, devices and sockets are never listed or opened
    real = Path(os.path.realpath(path))
    if real == root or root not in real.parents:
        return None
    try:
        target = os.stat(real)
    except OSError:
        return None
    return Entry(rel, real, link=True) if stat.S_ISREG(target.st_mode) else None
