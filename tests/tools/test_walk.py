"""Walks behind list, grep, count and extract: .gitignore files, symlinks, special files."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from crewchief.tools.files import run_file_tool
from crewchief.tools.workspace import Workspace
from tests.tools.conftest import OUTSIDE_TEXT, fifo_guard, write_tree

# Each walking tool, with arguments that ask for everything under the root.
WALKERS = {
    "list_files": {},
    "grep_files": {"pattern": "."},
    "count_lines": {"paths": ["**/*"]},
    "extract_symbols": {"path": "**/*.py"},
}


@pytest.fixture
def ignored(root: Path) -> Path:
    write_tree(
        root,
        {
            ".gitignore": "*.log\n!keep.log\nbuild/\n/top.txt\n# a comment\n",
            "app.py": "def app():\n    pass\n",
            "debug.log": "noise\n",
            "keep.log": "kept\n",
            "top.txt": "root only\n",
            "build/out.py": "def built():\n    pass\n",
            "sub/top.txt": "nested top is not anchored\n",
            "sub/trace.log": "noise\n",
            "sub/.gitignore": "*.tmp\n!debug.log\n",
            "sub/debug.log": "re-included below sub\n",
            "sub/scratch.tmp": "scratch\n",
            "sub/mod.py": "class Mod:\n    pass\n",
            "scratch.tmp": "only ignored below sub\n",
        },
    )
    return root


def test_list_respects_root_and_nested_gitignore(ws: Workspace, ignored: Path) -> None:
    assert ws.list_files().splitlines() == [
        ".gitignore",
        "app.py",
        "keep.log",
        "notes.txt",
        "scratch.tmp",
        "sub/.gitignore",
        "sub/debug.log",
        "sub/mod.py",
        "sub/top.txt",
    ]


@pytest.mark.parametrize("tool", ["grep_files", "count_lines", "extract_symbols"])
def test_other_walks_respect_gitignore(ws: Workspace, ignored: Path, tool: str) -> None:
    outcome = run_file_tool(ws, tool, WALKERS[tool])
    assert outcome.ok, outcome.output
    for hidden in ["debug.log", "build/out.py", "sub/trace.log", "sub/scratch.tmp", "top.txt"]:
        # Paths start a line or follow spaces; "sub/debug.log" and "sub/top.txt" are kept.
        assert not re.search(rf"(^|\s){re.escape(hidden)}", outcome.output, re.MULTILINE)
    if tool == "extract_symbols":
        assert outcome.output == "app.py:\n1 def app()\nsub/mod.py:\n1 class Mod"


def test_named_file_is_read_even_if_ignored(ws: Workspace, ignored: Path) -> None:
    assert ws.read_file("debug.log") == "noise\n"


@pytest.fixture
def links(root: Path) -> Path:
    """Symlinks out of the root, at the top and deeper, plus one that stays inside."""
    outside = root.parent / "outside"
    write_tree(root, {"a/b/real.py": "SECRET_NAME = 'inside'\n"})
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    (root / "a" / "b" / "deep_leak.txt").symlink_to(outside / "secret.txt")
    (root / "a" / "b" / "deep_dir").symlink_to(outside, target_is_directory=True)
    (root / "a" / "alias.py").symlink_to(root / "a" / "b" / "real.py")
    (root / "a" / "loop").symlink_to(root / "a", target_is_directory=True)
    (root / "dangling.txt").symlink_to(root / "missing.txt")
    return root


@pytest.mark.parametrize("tool", list(WALKERS))
def test_walks_never_follow_symlinks_out_of_the_root(ws: Workspace, links: Path, tool: str) -> None:
    args = {**WALKERS[tool], "pattern": "secret|top"} if tool == "grep_files" else WALKERS[tool]
    outcome = run_file_tool(ws, tool, args)
    assert OUTSIDE_TEXT.strip() not in outcome.output
    for name in ["leak.txt", "linkdir", "deep_leak", "deep_dir", "secret.txt", "loop/"]:
        assert name not in outcome.output


def test_symlink_inside_root_is_listed_and_searched_once(ws: Workspace, links: Path) -> None:
    assert ws.list_files() == "a/alias.py\na/b/real.py\nnotes.txt"
    assert ws.grep_files("SECRET_NAME") == "a/alias.py:1: SECRET_NAME = 'inside'"
    assert ws.count_lines("**/*.py").splitlines()[1:] == [
        "      1       1       0       0  a/alias.py",
        "      1       1       0       0  total (1 file)",
    ]


def test_glob_starting_in_a_linked_folder_finds_nothing(ws: Workspace, links: Path) -> None:
    assert ws.list_files("linkdir/*") == "no files match 'linkdir/*'"
    assert ws.list_files("a/b/deep_dir/**") == "no files match 'a/b/deep_dir/**'"


def test_fifo_in_the_tree_never_blocks_a_walk(ws: Workspace, root: Path) -> None:
    write_tree(root, {"src/app.py": "def run():\n    return 1\n"})
    os.mkfifo(root / "src" / "pipe.py")
    with fifo_guard(root / "src" / "pipe.py"):
        assert ws.list_files() == "notes.txt\nsrc/app.py"
        assert ws.grep_files("return") == "src/app.py:2:     return 1"
        assert ws.extract_symbols("src") == "src/app.py:\n1 def run()"
        assert ws.count_lines("src").endswith("total (1 file)")


@pytest.mark.parametrize("pattern", ["src", "src/", "./src", "./src/**"])
def test_folder_name_stands_for_its_files(ws: Workspace, root: Path, pattern: str) -> None:
    write_tree(root, {"src/a.py": "A = 1\n", "src/sub/b.py": "B = 2\n", "srcfile.py": ""})
    assert ws.list_files(pattern) == "src/a.py\nsrc/sub/b.py"
    assert ws.grep_files("=", glob=pattern) == "src/a.py:1: A = 1\nsrc/sub/b.py:1: B = 2"
