"""What the executor is given (the files a task names) and how a reply becomes file edits."""

from __future__ import annotations

from pathlib import Path

import pytest

from crewchief.nodes.task_context import (
    MAX_FILE_CHARS,
    MAX_FILES,
    Edit,
    NamedFile,
    asks_for_changes,
    named_files,
    render_named_files,
    strip_code_blocks,
    whole_file_edits,
)
from crewchief.tools.workspace import Workspace

UTILS = "import os\n\n\ndef join(a, b):\n    return os.path.join(a, b)\n"
UTILS_DOC = (
    "import os\n\n\ndef join(a, b):\n"
    '    """Join two path parts."""\n'
    "    return os.path.join(a, b)\n"
)
APP = "from utils import join\n\n\ndef main():\n    print(join('a', 'b'))\n"


@pytest.fixture
def ws(tmp_path: Path) -> Workspace:
    (tmp_path / "utils.py").write_text(UTILS, encoding="utf-8")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "app.py").write_text(APP, encoding="utf-8")
    return Workspace.open(tmp_path)


def paths(files: list[NamedFile]) -> list[str]:
    return [f.path for f in files]


def reply_for(label: str, content: str = UTILS_DOC, lang: str = "python") -> str:
    return f"{label}\n```{lang}\n{content}```\nAdded a docstring."


# -- named_files ---------------------------------------------------------------------------


def test_named_files_finds_files_with_their_content(ws: Workspace) -> None:
    found = named_files(ws, "Use join from utils.py in src/app.py.")
    assert found == [NamedFile("utils.py", UTILS), NamedFile("src/app.py", APP)]


def test_named_files_skips_names_that_do_not_exist(ws: Workspace) -> None:
    found = named_files(ws, "Move helpers.py and lib/missing.py into utils.py, e.g. like v1.2")
    assert paths(found) == ["utils.py"]


def test_named_files_keeps_first_mention_order_across_texts(ws: Workspace) -> None:
    found = named_files(
        ws, "Update src/app.py, then utils.py, then src/app.py again", "See utils.py"
    )
    assert paths(found) == ["src/app.py", "utils.py"]


def test_named_files_skips_binary_files(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    assert paths(named_files(ws, "Put logo.png next to utils.py")) == ["utils.py"]


def test_named_files_skips_files_over_the_size_bound(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / "edge.py").write_text("x" * MAX_FILE_CHARS, encoding="utf-8")
    (tmp_path / "big.py").write_text("x" * (MAX_FILE_CHARS + 1), encoding="utf-8")
    assert paths(named_files(ws, "Split big.py and edge.py")) == ["edge.py"]


def test_named_files_is_bounded_and_only_counts_found_files(ws: Workspace, tmp_path: Path) -> None:
    for name in "abcdef":
        (tmp_path / f"{name}.py").write_text(f"{name} = 1\n", encoding="utf-8")
    found = named_files(ws, "Merge gone.py f.py e.py d.py c.py b.py a.py")
    assert MAX_FILES == 4
    assert paths(found) == ["f.py", "e.py", "d.py", "c.py"]


def test_named_files_accepts_dot_slash_and_dot_folders(ws: Workspace, tmp_path: Path) -> None:
    (tmp_path / ".github").mkdir()
    (tmp_path / ".github" / "ci.yml").write_text("on: push\n", encoding="utf-8")
    found = named_files(ws, "Add docstrings to ./utils.py and fix .github/ci.yml")
    assert paths(found) == ["utils.py", ".github/ci.yml"]


# -- render_named_files --------------------------------------------------------------------


def test_render_named_files_shows_each_file_in_a_fenced_block() -> None:
    text = render_named_files([NamedFile("utils.py", "x = 1"), NamedFile("NOTES", "hi\n")])
    assert text == (
        "\nFiles named in the task (current content):\n\n"
        "utils.py\n```python\nx = 1\n```\n\nNOTES\n```\nhi\n```\n"
    )
    assert render_named_files([]) == ""


# -- whole_file_edits ----------------------------------------------------------------------


def test_path_line_and_python_block_is_one_edit() -> None:
    edits, notes = whole_file_edits(reply_for("utils.py"), [NamedFile("utils.py", UTILS)])
    assert edits == [Edit("utils.py", UTILS_DOC)]
    assert notes == []


@pytest.mark.parametrize(
    "label",
    ["**utils.py**", "`utils.py`:", "./utils.py", "/path/to/utils.py", "File: utils.py"],
)
def test_label_styles_map_to_the_named_file(label: str) -> None:
    # Two named files, so only the label can say which one the block is.
    files = [NamedFile("utils.py", UTILS), NamedFile("src/app.py", APP)]
    edits, notes = whole_file_edits(reply_for(label), files)
    assert edits == [Edit("utils.py", UTILS_DOC)]
    assert notes == []


def test_labels_pick_the_right_file_among_several() -> None:
    files = [NamedFile("utils.py", UTILS), NamedFile("src/app.py", APP)]
    app_doc = APP.replace("def main():\n", 'def main():\n    """Entry point."""\n')
    reply = reply_for("src/app.py", app_doc) + "\n\n" + reply_for("**utils.py**")
    edits, _ = whole_file_edits(reply, files)
    assert edits == [Edit("src/app.py", app_doc), Edit("utils.py", UTILS_DOC)]


def test_single_unlabeled_block_applies_when_one_file_was_named() -> None:
    reply = reply_for("Here is the updated file:")
    edits, _ = whole_file_edits(reply, [NamedFile("utils.py", UTILS)])
    assert edits == [Edit("utils.py", UTILS_DOC)]


def test_unlabeled_block_does_not_apply_with_two_named_files() -> None:
    files = [NamedFile("utils.py", UTILS), NamedFile("src/app.py", APP)]
    assert whole_file_edits(reply_for("Here is the updated file:"), files) == ([], [])


def test_json_tool_call_block_is_never_a_python_file() -> None:
    call = '{"name": "write_file", "arguments": {"path": "utils.py", "content": "x = 1"}}\n'
    files = [NamedFile("utils.py", UTILS)]
    assert whole_file_edits(reply_for("", call, lang="json"), files) == ([], [])
    assert whole_file_edits(reply_for("utils.py", call, lang="json"), files) == ([], [])


def test_unchanged_content_is_not_an_edit() -> None:
    files = [NamedFile("utils.py", UTILS)]
    assert whole_file_edits(reply_for("utils.py", UTILS), files) == ([], [])


def test_invalid_python_is_refused_with_a_note() -> None:
    broken = "import os\n\n\ndef join(a, b)\n    return os.path.join(a, b)\n"
    edits, notes = whole_file_edits(reply_for("utils.py", broken), [NamedFile("utils.py", UTILS)])
    assert edits == []
    assert len(notes) == 1
    assert notes[0].startswith(
        "did not apply the new utils.py written in the reply: it is not valid Python ("
    )
    assert notes[0].endswith(", line 4)")


def test_rewrite_dropping_a_function_is_refused() -> None:
    old = UTILS + "\n\ndef split(p):\n    return os.path.split(p)\n"
    edits, notes = whole_file_edits(reply_for("utils.py"), [NamedFile("utils.py", old)])
    assert edits == []
    assert notes == ["did not apply the new utils.py written in the reply: it drops split"]


def test_rewrite_dropping_an_import_is_refused() -> None:
    old = "import os\nimport sys\n" + UTILS.removeprefix("import os\n")
    edits, notes = whole_file_edits(reply_for("utils.py"), [NamedFile("utils.py", old)])
    assert edits == []
    assert notes == ["did not apply the new utils.py written in the reply: it drops sys"]


def test_label_for_a_file_that_was_not_named_is_ignored() -> None:
    files = [NamedFile("utils.py", UTILS)]
    assert whole_file_edits(reply_for("helpers.py"), files) == ([], [])
    assert whole_file_edits(reply_for("/path/to/helpers.py"), files) == ([], [])


# -- asks_for_changes / strip_code_blocks --------------------------------------------------


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("Open utils.py", False),
        ("Review the tests", False),
        ("List the files", False),
        ("  summarize src/app.py", False),
        ("Add docstrings to utils.py", True),
        ("Fix the bug", True),
        ("Find and fix the bug in utils.py", True),
        ("Check and update the docstrings", True),
        ("Reviewer comments: rename join in utils.py", True),
    ],
)
def test_asks_for_changes(description: str, expected: bool) -> None:
    assert asks_for_changes(description) is expected


def test_strip_code_blocks_keeps_only_the_prose() -> None:
    text = "Done:\n```python\nx = 1\n```\n\n\n\nThen:\n```\nmore\n```\nAll good.\n"
    assert strip_code_blocks(text) == "Done:\n\nThen:\n\nAll good."
    assert strip_code_blocks("  no blocks here  ") == "no blocks here"


def test_a_path_in_a_fence_of_its_own_labels_the_next_block() -> None:
    old = "def f():\n    return 1\n"
    new = '"""Helpers."""\n\n\ndef f():\n    return 1\n'
    reply = f"```\nsrc/util.py\n```\n```python\n{new}```\nAdded a module docstring."
    edits, notes = whole_file_edits(reply, [NamedFile("src/util.py", old), NamedFile("b.py", old)])
    assert edits == [Edit("src/util.py", new)] and notes == []
