"""Shared fixtures: a workspace folder next to an ``outside`` folder it must never reach."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from crewchief.tools.workspace import Workspace

OUTSIDE_TEXT = "top secret\n"


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The workspace folder, with a sibling folder ``outside`` holding ``secret.txt``."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.txt").write_text(OUTSIDE_TEXT)
    ws_root = tmp_path / "ws"
    ws_root.mkdir()
    (ws_root / "notes.txt").write_text("one\ntwo\nthree\n")
    return ws_root.resolve()


@pytest.fixture
def ws(root: Path) -> Workspace:
    return Workspace.open(root)


def write_tree(root: Path, files: dict[str, str | bytes]) -> None:
    """Create ``files`` (relative path -> content) under ``root``."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")


def _unblock_reader(fifo: Path) -> None:
    """Open the FIFO's write end if someone is (wrongly) blocked reading it."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass  # no reader: nothing hangs


@contextmanager
def fifo_guard(fifo: Path, seconds: float = 2.0) -> Iterator[None]:
    """Turn a read that blocks on ``fifo`` into a test failure instead of a hang."""
    guard = threading.Timer(seconds, _unblock_reader, args=(fifo,))
    guard.start()
    try:
        yield
    finally:
        guard.cancel()
