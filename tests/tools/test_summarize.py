"""summarize_file: size, lines, language, detected patterns, capped lists, start and end."""

from __future__ import annotations

from pathlib import Path

import pytest

from crewchief.tools.files import run_file_tool
from crewchief.tools.workspace import Workspace
from tests.tools.conftest import write_tree

MODULE = '''"""A module to summarize."""

from __future__ import annotations

import os
import sys as system
from typing import (
    Any,
    Iterable,
)

LIMIT = 3


class Reader:
    """Reads things."""

    def read(self) -> str:
        # TODO: stream instead of reading all
        return ""

    async def close(self) -> None:
        pass


def helper(x: Any) -> int:
    return 1  # FIXME off by one


async def fetch() -> None:
    pass


if __name__ == "__main__":
    helper(None)
'''


def test_python_summary(ws: Workspace, root: Path) -> None:
    (root / "mod.py").write_text(MODULE)
    assert ws.summarize_file("mod.py") == "\n".join(
        [
            "mod.py: Python, 35 lines, 481 bytes",
            "imports (4): __future__, os, sys, typing",
            "classes (1): Reader L15",
            "functions (2): helper L26, fetch L30",
            "methods: 2",
            "TODO/FIXME (2):",
            "L19 TODO stream instead of reading all",
            "L27 FIXME off by one",
            # Blank lines and the import statements (listed above) are left out.
            "start:",
            '1: """A module to summarize."""',
            "12: LIMIT = 3",
            "15: class Reader:",
            '16:     """Reads things."""',
            "end:",
            '34: if __name__ == "__main__":',
            "35:     helper(None)",
        ]
    )


def test_lists_are_capped_with_a_count_of_the_rest(ws: Workspace, root: Path) -> None:
    functions = "".join(f"def f{n}():\n    pass\n" for n in range(20))
    todos = "".join(f"# TODO item {n}\n" for n in range(7))
    (root / "many.py").write_text(todos + functions)
    summary = ws.summarize_file("many.py").splitlines()
    shown = ", ".join(f"f{n} L{8 + 2 * n}" for n in range(12))
    assert summary[1] == f"functions (20): {shown}, +8 more"
    assert summary[2:7] == [
        "TODO/FIXME (7) +3 more:",
        "L1 TODO item 0",
        "L2 TODO item 1",
        "L3 TODO item 2",
        "L4 TODO item 3",
    ]


def test_javascript_summary(ws: Workspace, root: Path) -> None:
    write_tree(
        root,
        {
            "app.js": (
                "const fs = require('fs')\n"
                "import { join } from 'node:path'\n"
                "\n"
                "export class App extends Base {\n"
                "  run () {}\n"
                "}\n"
                "\n"
                "export async function start (port) {\n"
                "  return new App(port)\n"
                "}\n"
                "const stop = async (app) => app.close()\n"
                "module.exports = { start, stop }\n"
            )
        },
    )
    assert ws.summarize_file("app.js") == "\n".join(
        [
            "app.js: JavaScript, 12 lines, 241 bytes",
            "imports (2): fs, node:path",
            "classes (1): App L4",
            "functions (2): start L8, stop L11",
            "start:",
            "4: export class App extends Base {",
            "5:   run () {}",
            "8: export async function start (port) {",
            "9:   return new App(port)",
            "end:",
            "11: const stop = async (app) => app.close()",
            "12: module.exports = { start, stop }",
        ]
    )


def test_unknown_language_and_empty_file(ws: Workspace, root: Path) -> None:
    (root / "data.xyz").write_text("alpha\nbeta\n")
    (root / "empty.py").write_text("")
    assert ws.summarize_file("data.xyz") == (
        "data.xyz: unknown, 2 lines, 11 bytes\nstart:\n1: alpha\n2: beta"
    )
    assert ws.summarize_file("empty.py") == "empty.py: Python, 0 lines, 0 bytes"


def test_script_language_from_shebang(ws: Workspace, root: Path) -> None:
    (root / "tool").write_text("#!/usr/bin/env python3\nimport sys\n")
    assert ws.summarize_file("tool").splitlines()[:2] == [
        "tool: Python, 2 lines, 34 bytes",
        "imports (1): sys",
    ]


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({"image.png": b"\x89PNG\x00\x00"}, "image.png is a binary file"),
        ({"big.py": "x = 1\n" * 20}, "big.py is 120 bytes; the limit is 100"),
        ({"pkg/a.py": ""}, "pkg is a directory; use list_files"),
        ({}, "missing.py does not exist"),
    ],
)
def test_refusals(root: Path, setup: dict, expected: str) -> None:
    write_tree(root, setup)
    path = next(iter(setup), "missing.py").split("/")[0]
    outcome = run_file_tool(Workspace(root, max_file_bytes=100), "summarize_file", {"path": path})
    assert (outcome.ok, outcome.output) == (False, expected)
