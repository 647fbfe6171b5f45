"""File tools confined to one workspace root.

Every path a model gives is resolved against the root, following symlinks,
and refused when the result leaves the root. Reads are limited to regular
text files under a size limit; writes are atomic (temporary file, fsync,
rename), create parent folders, and never touch ``.git``.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

# What new files get, as if created with open(): 0o666 less the process umask.
_UMASK = os.umask(0)
os.umask(_UMASK)
MAX_FILE_BYTES = 1_000_000
MAX_LIST = 500
_SKIP_DIRS = {".git", "__pycache__", "node_modules", ".venv", ".mypy_cache", ".pytest_cache"}


class ToolError(ValueError):
    """A tool refused or failed; the message is shown to the model."""


@dataclass(frozen=True, slots=True)
class Workspace:
    """The folder an operation may read and change."""

    root: Path
    max_file_bytes: int = MAX_FILE_BYTES
    max_list: int = MAX_LIST

    def __post_init__(self) -> None:
        # Containment checks compare real paths, so the root must be one too.
        object.__setattr__(self, "root", Path(os.path.realpath(self.root)))

    @classmethod
    def open(cls, root: str | Path) -> Workspace:
        path = Path(root).expanduser().resolve()
        if not path.is_dir():
            raise ToolError(f"workspace {root} is not a directory")
        return cls(path)

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
        return str(PurePosixPath(real.relative_to(self.root))) or "."

    def read_file(
        self, path: str, start_line: int | None = None, end_line: int | None = None
    ) -> str:
        real = self.resolve(path)
        text = self._read_text(real, path)
        lines = text.splitlines()
        first = max(1, start_line or 1)
        last = min(len(lines), end_line or len(lines))
        if start_line is not None or end_line is not None:
            if first > last:
                raise ToolError(f"{path} has {len(lines)} lines; {first}..{last} is empty")
            return "\n".join(lines[first - 1 : last])
        return text

    def _read_text(self, real: Path, path: str) -> str:
        try:
            st = real.stat()
        except FileNotFoundError:
            raise ToolError(f"{path} does not exist") from None
        if stat.S_ISDIR(st.st_mode):
            raise ToolError(f"{path} is a directory; use list_files")
        if not stat.S_ISREG(st.st_mode):
            raise ToolError(f"{path} is not a regular file")
        if st.st_size > self.max_file_bytes:
            raise ToolError(
                f"{path} is {st.st_size:,} bytes; the limit is {self.max_file_bytes:,} "
                "(read a line range instead)"
            )
        data = real.read_bytes()
        if b"\x00" in data[:8192]:
            raise ToolError(f"{path} is a binary file")
        return data.decode("utf-8", errors="replace")

    def write_file(self, path: str, content: str) -> str:
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
        mode = real.stat().st_mode & 0o777 if real.exists() else 0o666 & ~_UMASK
        fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", dir=real.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, real)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        lines = content.count("\n") + (0 if content.endswith("\n") or not content else 1)
        return f"wrote {self.display(real)} ({len(data):,} bytes, {lines} lines)"

    def list_files(self, pattern: str = "**/*") -> str:
        pattern = pattern.strip() or "**/*"
        if "\x00" in pattern:
            raise ToolError("pattern contains a NUL byte")
        if PurePosixPath(pattern).is_absolute() or ".." in PurePosixPath(pattern).parts:
            raise ToolError("pattern must be relative to the workspace and stay inside it")
        matcher = _glob_regex(pattern)
        found: list[str] = []
        truncated = False
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
            for name in sorted(filenames):
                rel = PurePosixPath(Path(dirpath, name).relative_to(self.root))
                if matcher.fullmatch(str(rel)):
                    if len(found) == self.max_list:
                        truncated = True
                        break
                    found.append(str(rel))
            if truncated:
                break
        if not found:
            return f"no files match {pattern!r}"
        more = f"\n(stopped at {self.max_list} files; narrow the pattern)" if truncated else ""
        return "\n".join(sorted(found)) + more


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob anchored at the workspace root: ``*`` stays within one folder, ``**/``
    spans any number of folders (including none), a trailing ``**`` everything below.
    A pattern without a folder part (``*.py``) matches at any depth, like ``**/*.py``.
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
