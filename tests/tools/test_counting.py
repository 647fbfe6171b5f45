"""count_lines: code, comment and blank lines per language; bounded rows, exact totals."""

from __future__ import annotations

from pathlib import Path

import pytest

from crewchief.tools.files import run_file_tool
from crewchief.tools.workspace import Workspace
from tests.tools.conftest import write_tree

HEADER = "  lines    code comment   blank  path"

# Blank lines are blank even inside a docstring; the docstring's other lines are code.
PYTHON = '''\
"""Docstrings count as code.

# not a comment: inside a docstring
"""
# a comment

x = "# not a comment"  # but code with a trailing comment
'''

JAVASCRIPT = """\
// line comment
/* block
   comment */
const glob = "**/*.js" // a string holding /* is not a comment
const t = `template
// inside a template literal
`
let y = 1 /* code then a block
still comment */

"""


def row(lines: int, code: int, comment: int, blank: int, label: str) -> str:
    return f"{lines:>7} {code:>7} {comment:>7} {blank:>7}  {label}"


@pytest.fixture
def mixed(root: Path) -> Path:
    write_tree(root, {"a.py": PYTHON, "src/b.js": JAVASCRIPT, "src/c.py": "y = 2\n"})
    return root


def test_counts_per_file_per_language_and_total(ws: Workspace, mixed: Path) -> None:
    assert ws.count_lines(["*.py", "src"]).splitlines() == [
        HEADER,
        row(7, 4, 1, 2, "a.py"),
        row(1, 1, 0, 0, "src/c.py"),
        row(10, 5, 4, 1, "src/b.js"),
        row(10, 5, 4, 1, "JavaScript (1 file)"),
        row(8, 5, 1, 2, "Python (2 files)"),
        row(18, 10, 5, 3, "total (3 files)"),
    ]


def test_one_string_and_a_file_named_twice(ws: Workspace, mixed: Path) -> None:
    assert ws.count_lines("src/c.py") == "\n".join(
        [HEADER, row(1, 1, 0, 0, "src/c.py"), row(1, 1, 0, 0, "total (1 file)")]
    )
    twice = run_file_tool(ws, "count_lines", {"paths": ["src/c.py", "src/*.py", "./src/c.py"]})
    assert twice.output.endswith(row(1, 1, 0, 0, "total (1 file)"))


def test_rows_are_bounded_but_totals_stay_exact(root: Path) -> None:
    write_tree(root, {f"f{n}.py": "x = 1\n" * (n + 1) for n in range(5)})
    assert Workspace(root, max_rows=2).count_lines("f*.py").splitlines() == [
        HEADER,
        row(1, 1, 0, 0, "f0.py"),
        row(2, 2, 0, 0, "f1.py"),
        "(+3 more files not shown; the totals include them)",
        row(15, 15, 0, 0, "total (5 files)"),
    ]


def test_unreadable_files_are_skipped_and_named(root: Path) -> None:
    write_tree(root, {"blob.bin": b"\x00\x01", "big.txt": "x" * 200, "sub/img.png": b"\x00"})
    ws = Workspace(root, max_file_bytes=100)
    assert ws.count_lines(["notes.txt", "blob.bin", "big.txt", "sub"]).splitlines() == [
        HEADER,
        row(3, 3, 0, 0, "notes.txt"),
        row(3, 3, 0, 0, "total (1 file)"),
        "(skipped 1 binary, oversized or unreadable files)",
        "skipped: blob.bin is a binary file; big.txt is 200 bytes; the limit is 100",
    ]


@pytest.mark.parametrize(
    ("paths", "expected"),
    [
        (["blob.bin"], "count_lines found nothing to count: blob.bin is a binary file"),
        (["*.rs"], "count_lines found nothing to count: no files match '*.rs'"),
        (["missing.py"], "count_lines found nothing to count: missing.py does not exist"),
        ([], "count_lines: paths must be one or more non-empty strings"),
        ([3], "count_lines: paths must be a list of strings"),
        ('["a.py", 3]', "count_lines: paths must be a list of strings"),
    ],
)
def test_nothing_to_count_is_an_error(ws: Workspace, root: Path, paths, expected: str) -> None:
    (root / "blob.bin").write_bytes(b"\x00")
    outcome = run_file_tool(ws, "count_lines", {"paths": paths})
    assert outcome.ok is False
    assert outcome.output.startswith(expected)


def test_json_list_given_as_text_is_accepted(ws: Workspace, mixed: Path) -> None:
    outcome = run_file_tool(ws, "count_lines", {"paths": '["a.py", "src/c.py"]'})
    assert outcome.ok
    assert outcome.output.endswith(row(8, 5, 1, 2, "total (2 files)"))
