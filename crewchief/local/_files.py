"""Small file helpers shared by the model store and the server build."""

from __future__ import annotations

import fcntl
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of a pull or build, for a progress bar.

    ``stage`` is ``download``, ``join``, ``build`` or ``done``; ``done``/``total``
    are bytes for a pull and percent for a build (``None`` when unknown).
    """

    stage: str
    message: str
    done: int | None = None
    total: int | None = None


ProgressFn = Callable[[Progress], None]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive lock across processes (held until the block ends)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
