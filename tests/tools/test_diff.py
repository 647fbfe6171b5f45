"""The diff a ``write_file`` call reports: against the file before the write, from empty
for a new file, a note for a file that was not text, cut at its limit, none for a write
that failed."""

from __future__ import annotations

import os
from pathlib import Path

from crewchief.tools.diff import MAX_DIFF_CHARS, NOT_TEXT, run_tool_with_diff, unified_diff
from crewchief.tools.workspace import Workspace
from tests.tools.conftest import fifo_guard


def write(ws: Workspace, path: str, content: str) -> tuple[bool, str | None]:
    outcome, diff = run_tool_with_diff(ws, "write_file", {"path": path, "content": content})
    return outcome.ok, diff


def test_a_changed_line_is_removed_and_added_with_context(ws: Workspace, root: Path) -> None:
    ok, diff = write(ws, "notes.txt", "one\nTWO\nthree\n")
    assert (
        ok
        and diff == "--- a/notes.txt\n+++ b/notes.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n"
    )
    assert (root / "notes.txt").read_text() == "one\nTWO\nthree\n"


def test_a_new_file_is_all_added_and_a_missing_newline_is_said(ws: Workspace) -> None:
    ok, diff = write(ws, "./docs/new.md", "# Title\nno newline")
    assert ok
    assert diff == (
        "--- a/docs/new.md\n+++ b/docs/new.md\n@@ -0,0 +1,2 @@\n+# Title\n+no newline\n"
        "\\ No newline at end of file\n"
    )


def test_unchanged_content_gives_an_empty_diff(ws: Workspace) -> None:
    assert write(ws, "notes.txt", "one\ntwo\nthree\n") == (True, "")


def test_previous_content_that_is_not_text_gets_a_note(ws: Workspace, root: Path) -> None:
    (root / "image.png").write_bytes(b"\x89PNG\x00\x00binary")
    (root / "latin1.txt").write_bytes("caf\xe9\n".encode("latin-1"))
    for name in ("image.png", "latin1.txt"):
        ok, diff = write(ws, name, "text\n")
        assert ok and diff == f"--- a/{name}\n+++ b/{name}\n\\ {NOT_TEXT}\n"


def test_a_long_diff_is_cut_with_a_last_line_saying_so(ws: Workspace) -> None:
    content = "".join(f"line {i}\n" for i in range(5000))
    ok, diff = write(ws, "big.txt", content)
    assert ok and len(diff) <= MAX_DIFF_CHARS + 100
    assert diff.endswith(f"\\ diff truncated at {MAX_DIFF_CHARS:,} characters\n")
    assert diff.splitlines()[-2].startswith("+line ")  # whole lines only
    assert unified_diff("x", "", "a\n" * 10, limit=20).splitlines() == [
        "--- a/x", "+++ b/x", "\\ diff truncated at 20 characters",
    ]  # fmt: skip


def test_a_refused_or_failed_write_and_a_read_have_no_diff(ws: Workspace, root: Path) -> None:
    assert write(ws, "../outside/secret.txt", "pwned") == (False, None)
    (root / "folder").mkdir()
    assert write(ws, "folder", "text") == (False, None)
    outcome, diff = run_tool_with_diff(ws, "read_file", {"path": "notes.txt"})
    assert outcome.ok and diff is None  # only writes have one


def test_the_previous_content_is_read_without_blocking_on_a_fifo(ws: Workspace, root: Path) -> None:
    fifo = root / "pipe"
    os.mkfifo(fifo)
    with fifo_guard(fifo):
        ok, diff = write(ws, "pipe", "text")
    assert not ok and diff is None  # the write refuses a FIFO; the read did not hang
