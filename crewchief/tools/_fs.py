"""Reading one file safely: regular text files under a size limit, never blocking.

A path that passed the workspace's containment check may still name a FIFO, a
device or a socket, or be swapped for a symlink before it is opened. So the
file is opened with ``O_NONBLOCK | O_NOFOLLOW`` and judged by ``fstat`` on the
open descriptor: opening a FIFO that way returns at once, and what is read is
exactly what was checked.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

# Binary files almost always hold a NUL byte early; text files never do.
_SNIFF_BYTES = 8192


class ToolError(ValueError):
    """A tool refused or failed; the message is shown to the model."""


def read_bytes(real: Path, shown: str, max_bytes: int) -> bytes:
    """The content of the regular file ``real`` (``shown`` names it in errors).

    Raises:
        ToolError: missing, a directory, not a regular file, or over ``max_bytes``.
    """
    flags = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(real, flags)
    except FileNotFoundError:
        raise ToolError(f"{shown} does not exist") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ToolError(f"{shown} changed into a symlink while being read") from None
        if exc.errno in (errno.ENXIO, errno.ENODEV):
            raise ToolError(f"{shown} is not a regular file") from None
        raise
    try:
        st = os.fstat(fd)
        if stat.S_ISDIR(st.st_mode):
            raise ToolError(f"{shown} is a directory; use list_files")
        if not stat.S_ISREG(st.st_mode):
            raise ToolError(f"{shown} is not a regular file")
        if st.st_size > max_bytes:
            raise ToolError(f"{shown} is {st.st_size:,} bytes; the limit is {max_bytes:,}")
        data = _read_up_to(fd, max_bytes + 1)  # one byte more tells a file that grew
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ToolError(f"{shown} grew past the limit of {max_bytes:,} bytes while being read")
    return data


def _read_up_to(fd: int, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, min(1 << 20, limit - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def read_text(real: Path, shown: str, max_bytes: int) -> str:
    """Like :func:`read_bytes`, decoded as UTF-8; binary files are refused."""
    data = read_bytes(real, shown, max_bytes)
    if is_binary(data):
        raise ToolError(f"{shown} is a binary file")
    return data.decode("utf-8", errors="replace")


def is_binary(data: bytes) -> bool:
    """Whether ``data`` looks like a binary file rather than text."""
    return b"\x00" in data[:_SNIFF_BYTES]


def split_lines(text: str) -> list[str]:
    """The lines of ``text``, split at ``\\n`` only (a ``\\r`` before it is dropped).

    Every tool numbers lines this way, so a line number from grep_files,
    summarize_file or extract_symbols is the one read_file's ranges use; unlike
    :meth:`str.splitlines`, a form feed or U+2028 inside a line does not split it.
    """
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]
