"""What a ``write_file`` call changed: a unified diff of the file before and after.

The previous content is read before the write with the workspace's own rules (inside the
root, a regular file under the size limit, opened without blocking); a file that did not
exist diffs from empty, and one that cannot be read as text gets a note instead of lines.
"""

from __future__ import annotations

import difflib
from typing import Any

from crewchief.tools._fs import ToolError, is_binary, read_bytes
from crewchief.tools.files import ToolOutcome, run_file_tool
from crewchief.tools.workspace import Workspace

MAX_DIFF_CHARS = 20_000
NOT_TEXT = "previous content not text"
_CONTEXT_LINES = 3


def previous_text(workspace: Workspace, path: Any) -> tuple[str, str | None] | None:
    """``(shown path, text)`` of the file ``path`` names before it is written: text ``""``
    for a file that does not exist, None when it cannot be read as text (binary, too
    large, unreadable); None altogether for a path the write will refuse."""
    try:
        real = workspace.resolve(path, for_write=True)
    except (ToolError, OSError):
        return None
    shown = workspace.display(real)
    try:
        if not real.exists():
            return shown, ""
        data = read_bytes(real, shown, workspace.max_file_bytes)
        return shown, None if is_binary(data) else data.decode("utf-8")
    except (ToolError, OSError, UnicodeDecodeError):
        return shown, None


def unified_diff(path: str, old: str | None, new: str, limit: int = MAX_DIFF_CHARS) -> str:
    """The change from ``old`` to ``new`` with ``a/<path>`` and ``b/<path>`` headers and 3
    lines of context, at most about ``limit`` characters (a last line says it was cut);
    ``old`` None (not text) gives the headers and a note."""
    head = f"--- a/{path}\n+++ b/{path}\n"
    if old is None:
        return f"{head}\\ {NOT_TEXT}\n"
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        f"a/{path}",
        f"b/{path}",
        n=_CONTEXT_LINES,
    )
    out: list[str] = []
    size = 0
    for line in lines:
        if not line.endswith("\n"):
            line += "\n\\ No newline at end of file\n"
        if size + len(line) > limit:
            out.append(f"\\ diff truncated at {limit:,} characters\n")
            break
        out.append(line)
        size += len(line)
    return "".join(out)


def run_tool_with_diff(
    workspace: Workspace, name: str, args: dict[str, Any]
) -> tuple[ToolOutcome, str | None]:
    """Run a tool call; for a successful ``write_file``, the diff of what it changed too.
    Blocking (reads and writes files): run it in a thread."""
    writes = name == "write_file" and isinstance(args, dict)
    before = previous_text(workspace, args.get("path")) if writes else None
    outcome = run_file_tool(workspace, name, args)
    if before is None or not outcome.ok or not isinstance(args.get("content"), str):
        return outcome, None
    shown, old = before
    return outcome, unified_diff(shown, old, args["content"])
