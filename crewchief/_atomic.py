"""Replace a file atomically: readers see the old content or the new, never half of it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# The process umask, read once (os.umask can only be read by setting it).
_UMASK = os.umask(0)
os.umask(_UMASK)


def atomic_write(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through a synced temporary file and ``os.replace``.

    Args:
        path: The file to create or replace; its folder must exist.
        data: The new content.
        mode: Permission bits. Default: an existing file's, else what a new file
            would get under the umask (``mkstemp`` alone would give 0o600).
    """
    if mode is None:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o666 & ~_UMASK
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
