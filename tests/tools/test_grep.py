"""grep_files: output format, context, case, globs, bounds, skipped files and bad patterns."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from crewchief.tools.files import run_file_tool
from crewchief.tools.workspace import Workspace
from tests.tools.conftest import write_tree

CODE = "\n".join(f"line {n}" for n in range(1, 21)) + "\n"

# A hang guard, not a speed target: the tool's 1 s matching budget normally stops the
# catastrophic pattern below after about 1 s. Without the budget, its backtracking would run
# far longer than this.
GREP_HANG_GUARD_S = 15


@pytest.fixture
def code(root: Path) -> Path:
    write_tree(
        root,
        {
            "src/app.py": "import os\n\ndef Load(path):\n    return os.path.join(path)\n",
            "src/util.py": "def load_all():\n    pass\n",
            "docs/guide.md": "Call load() first.\n",
            "lines.txt": CODE,
        },
    )
    return root


def test_matches_come_as_path_line_text(ws: Workspace, code: Path) -> None:
    assert (
        ws.grep_files(r"def \w+") == "src/app.py:3: def Load(path):\nsrc/util.py:1: def load_all():"
    )


def test_ignore_case_and_glob(ws: Workspace, code: Path) -> None:
    assert ws.grep_files("load", glob="src/*.py") == "src/util.py:1: def load_all():"
    assert ws.grep_files("load", glob="src/*.py", ignore_case=True) == (
        "src/app.py:3: def Load(path):\nsrc/util.py:1: def load_all():"
    )
    assert ws.grep_files("load", glob="*.md") == "docs/guide.md:1: Call load() first."


def test_context_lines_like_grep_c(ws: Workspace, code: Path) -> None:
    assert ws.grep_files(r"^line (3|5|12)$", glob="lines.txt", context=1) == "\n".join(
        [
            "lines.txt-2- line 2",
            "lines.txt:3: line 3",
            "lines.txt-4- line 4",
            "lines.txt:5: line 5",
            "lines.txt-6- line 6",
            "--",
            "lines.txt-11- line 11",
            "lines.txt:12: line 12",
            "lines.txt-13- line 13",
        ]
    )


def test_arguments_come_through_dispatch_leniently(ws: Workspace, code: Path) -> None:
    args = {"pattern": "LOAD_ALL", "glob": "src/**", "context": "1", "ignore_case": "true"}
    outcome = run_file_tool(ws, "grep_files", args)
    assert (outcome.ok, outcome.output) == (
        True,
        "src/util.py:1: def load_all():\nsrc/util.py-2-     pass",
    )


def test_no_match_says_so(ws: Workspace, code: Path) -> None:
    assert ws.grep_files("nowhere") == "no matches for 'nowhere' in 5 files"


def test_matches_are_bounded_with_a_note(root: Path, code: Path) -> None:
    small = Workspace(root, max_matches=3)
    assert small.grep_files("line", glob="lines.txt") == (
        "lines.txt:1: line 1\nlines.txt:2: line 2\nlines.txt:3: line 3\n"
        "(stopped at 3 matches; narrow the pattern or glob)"
    )


def test_binary_and_oversized_files_are_skipped(root: Path) -> None:
    write_tree(
        root,
        {
            "blob.bin": b"needle\x00\x01",
            "big.txt": "needle " * 20,
            "ok.txt": "needle\n",
        },
    )
    small = Workspace(root, max_file_bytes=100)
    assert small.grep_files("needle") == ("ok.txt:1: needle\n(skipped 2 binary or oversized files)")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"pattern": "(unclosed"}, "pattern is not a valid regular expression: missing )"),
        ({"pattern": "[z-a]"}, "pattern is not a valid regular expression: bad character range"),
        ({"pattern": ""}, "pattern must be a non-empty regular expression"),
        ({"pattern": "x", "context": 11}, "context must be between 0 and 10"),
        ({"pattern": "x", "context": "-1"}, "context must be an integer"),
        ({"pattern": "x", "ignore_case": "maybe"}, "ignore_case must be true or false"),
        ({"pattern": "x", "glob": "../*"}, "glob must be relative to the workspace"),
        ({}, "grep_files needs argument(s) pattern"),
    ],
)
def test_bad_arguments_are_refused(ws: Workspace, args: dict, expected: str) -> None:
    outcome = run_file_tool(ws, "grep_files", args)
    assert outcome.ok is False
    assert expected in outcome.output


def test_catastrophic_pattern_is_stopped_by_the_time_budget(ws: Workspace, root: Path) -> None:
    (root / "aaa.txt").write_text("a" * 5000 + "!\n")
    started = time.monotonic()
    outcome = run_file_tool(ws, "grep_files", {"pattern": "(a+)+$"})
    elapsed = time.monotonic() - started
    assert outcome.ok is False
    assert "took longer than 1 s to match" in outcome.output
    assert "simplify the pattern" in outcome.output
    assert elapsed < GREP_HANG_GUARD_S, (
        f"hang guard: the 1 s budget did not stop the match ({elapsed:.1f} s)"
    )


def test_pattern_matching_everywhere_gives_one_hit_per_line(ws: Workspace, root: Path) -> None:
    (root / "wide.txt").write_text("b" * 300_000 + "\nsecond\n")
    outcome = run_file_tool(ws, "grep_files", {"pattern": "a*", "glob": "wide.txt"})
    assert outcome.ok, outcome.output
    assert outcome.output == f"wide.txt:1: {'b' * 199}…\nwide.txt:2: second"
