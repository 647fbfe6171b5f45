"""File tools confined to a workspace: reads, atomic writes, listing, escapes and dispatch."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from crewchief.tools import workspace as workspace_module
from crewchief.tools.files import run_file_tool, summarize_args
from crewchief.tools.workspace import ToolError, Workspace
from tests.tools.conftest import OUTSIDE_TEXT, fifo_guard


def entries(folder: Path) -> list[str]:
    return sorted(os.listdir(folder))


# -- read_file -------------------------------------------------------------------------


def test_read_whole_file_and_line_ranges(ws: Workspace) -> None:
    assert ws.read_file("notes.txt") == "one\ntwo\nthree\n"
    assert ws.read_file("notes.txt", 2, 3) == "two\nthree"
    assert ws.read_file("notes.txt", start_line=3) == "three"
    assert ws.read_file("notes.txt", end_line=1) == "one"
    assert ws.read_file("notes.txt", 2, 99) == "two\nthree"
    with pytest.raises(ToolError, match=r"notes.txt has 3 lines; 5..3 is empty"):
        ws.read_file("notes.txt", 5)


def test_read_refuses_missing_directory_and_binary(ws: Workspace, root: Path) -> None:
    (root / "src").mkdir()
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with pytest.raises(ToolError, match=r"^missing.py does not exist$"):
        ws.read_file("missing.py")
    with pytest.raises(ToolError, match=r"^src is a directory; use list_files$"):
        ws.read_file("src")
    with pytest.raises(ToolError, match=r"^image.png is a binary file$"):
        ws.read_file("image.png")


def test_read_refuses_file_over_size_limit(root: Path) -> None:
    small = Workspace(root, max_file_bytes=10)
    (root / "big.txt").write_text("x" * 11)
    (root / "fits.txt").write_text("x" * 10)
    with pytest.raises(ToolError, match=r"big.txt is 11 bytes; the limit is 10"):
        small.read_file("big.txt")
    assert small.read_file("fits.txt") == "x" * 10


def test_read_refuses_fifo_without_blocking(ws: Workspace, root: Path) -> None:
    os.mkfifo(root / "pipe")
    with fifo_guard(root / "pipe"), pytest.raises(ToolError, match=r"^pipe is not a regular file$"):
        ws.read_file("pipe")
    with pytest.raises(ToolError, match=r"^pipe exists and is not a regular file$"):
        ws.write_file("pipe", "data")


def test_device_file_through_symlink_is_refused(ws: Workspace, root: Path) -> None:
    (root / "null").symlink_to("/dev/null")
    with pytest.raises(ToolError, match=r"^null is outside the workspace$"):
        ws.read_file("null")


def test_char_device_inside_root_is_refused(ws: Workspace, root: Path) -> None:
    try:
        os.mknod(root / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except PermissionError:
        pytest.skip("creating a device node needs CAP_MKNOD")
    for tool in ["read_file", "summarize_file", "extract_symbols", "count_lines"]:
        outcome = run_file_tool(ws, tool, path_args(tool, "null"))
        assert (outcome.ok, "null is not a regular file" in outcome.output) == (False, True)
    assert ws.list_files() == "notes.txt"
    with pytest.raises(ToolError, match=r"^null exists and is not a regular file$"):
        ws.write_file("null", "data")


@pytest.mark.parametrize("tool", ["summarize_file", "extract_symbols", "count_lines"])
def test_fifo_is_refused_by_every_reading_tool(ws: Workspace, root: Path, tool: str) -> None:
    os.mkfifo(root / "pipe.py")
    with fifo_guard(root / "pipe.py"):
        outcome = run_file_tool(ws, tool, path_args(tool, "pipe.py"))
    assert outcome.ok is False
    assert "pipe.py is not a regular file" in outcome.output


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ({"start_line": 0}, "read_file: start_line must be 1 or more"),
        ({"end_line": -1}, "read_file: end_line must be 1 or more"),
    ],
)
def test_line_numbers_below_one_are_refused(ws: Workspace, args: dict, expected: str) -> None:
    outcome = run_file_tool(ws, "read_file", {"path": "notes.txt", **args})
    assert (outcome.ok, outcome.output) == (False, f"{expected} (lines count from 1)")


def test_line_ranges_split_at_newlines_only(ws: Workspace, root: Path) -> None:
    (root / "ff.py").write_text("a = 1\n\x0c\nb = 2\r\nc = 3\n")
    assert ws.read_file("ff.py", 3, 3) == "b = 2"
    assert ws.read_file("ff.py", start_line=4) == "c = 3"
    assert ws.grep_files("c = 3") == "ff.py:4: c = 3"


# -- write_file ------------------------------------------------------------------------


def test_write_creates_parents_and_leaves_no_temp_files(ws: Workspace, root: Path) -> None:
    result = ws.write_file("src/pkg/mod.py", "a = 1\nb = 2\n")
    assert result == "wrote src/pkg/mod.py (12 bytes, 2 lines)"
    assert (root / "src/pkg/mod.py").read_text() == "a = 1\nb = 2\n"
    assert entries(root / "src/pkg") == ["mod.py"]
    assert ws.write_file("notes.txt", "replaced") == "wrote notes.txt (8 bytes, 1 lines)"
    assert (root / "notes.txt").read_text() == "replaced"
    assert entries(root) == ["notes.txt", "src"]


def test_write_keeps_permission_bits(ws: Workspace, root: Path) -> None:
    script = root / "run.sh"
    script.write_text("echo old\n")
    script.chmod(0o751)
    ws.write_file("run.sh", "echo new\n")
    assert stat.S_IMODE(script.stat().st_mode) == 0o751
    assert script.read_text() == "echo new\n"


def test_failed_replace_keeps_old_content_and_cleans_up(
    ws: Workspace, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_replace(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(workspace_module.os, "replace", broken_replace)
    outcome = run_file_tool(ws, "write_file", {"path": "notes.txt", "content": "new"})
    assert (outcome.ok, outcome.output) == (False, "write_file failed: No space left on device")
    assert (root / "notes.txt").read_text() == "one\ntwo\nthree\n"
    assert entries(root) == ["notes.txt"]


@pytest.mark.parametrize("path", [".git/config", "sub/.git/config", ".git", "a/b/.git/HEAD"])
def test_write_into_git_is_refused(ws: Workspace, root: Path, path: str) -> None:
    with pytest.raises(ToolError, match=r"writing inside .git is not allowed"):
        ws.write_file(path, "[core]\n")
    assert entries(root) == ["notes.txt"]


def test_write_through_symlink_into_git_is_refused(ws: Workspace, root: Path) -> None:
    (root / ".git").mkdir()
    (root / ".git/config").write_text("[core]\n")
    (root / "alias").symlink_to(".git/config")
    with pytest.raises(ToolError, match=r"writing inside .git is not allowed"):
        ws.write_file("alias", "hacked")
    assert (root / ".git/config").read_text() == "[core]\n"


def test_write_refuses_directory_target(ws: Workspace, root: Path) -> None:
    (root / "src").mkdir()
    with pytest.raises(ToolError, match=r"^src exists and is not a regular file$"):
        ws.write_file("src", "text")
    assert (root / "src").is_dir()


# -- escapes ---------------------------------------------------------------------------


ESCAPES = [
    ("../outside/secret.txt", "outside the workspace"),
    ("a/../../outside/secret.txt", "outside the workspace"),
    ("{outside}/secret.txt", "outside the workspace"),
    ("/etc/passwd", "outside the workspace"),
    ("leak.txt", "outside the workspace"),  # symlink to ../outside/secret.txt
    ("linkdir/secret.txt", "outside the workspace"),  # linkdir -> ../outside
    ("notes\x00.txt", "NUL byte"),
    ("", "non-empty string"),
    ("   ", "non-empty string"),
]


def path_args(tool: str, path: str) -> dict:
    """The arguments that hand ``path`` to ``tool``."""
    if tool == "write_file":
        return {"path": path, "content": "pwned"}
    if tool == "count_lines":
        return {"paths": [path]}
    return {"path": path}


PATH_TOOLS = ["read_file", "write_file", "summarize_file", "extract_symbols", "count_lines"]


@pytest.mark.parametrize(("path", "reason"), ESCAPES)
@pytest.mark.parametrize("tool", PATH_TOOLS)
def test_escapes_are_refused(ws: Workspace, root: Path, tool: str, path: str, reason: str) -> None:
    outside = root.parent / "outside"
    (root / "leak.txt").symlink_to(outside / "secret.txt")
    (root / "linkdir").symlink_to(outside, target_is_directory=True)
    path = path.replace("{outside}", str(outside))
    args = path_args(tool, path)
    outcome = run_file_tool(ws, tool, args)
    assert outcome.ok is False
    assert reason in outcome.output
    assert OUTSIDE_TEXT not in outcome.output
    assert entries(root.parent / "outside") == ["secret.txt"]
    assert (root.parent / "outside" / "secret.txt").read_text() == OUTSIDE_TEXT


def test_absolute_path_inside_root_and_internal_symlink_are_allowed(
    ws: Workspace, root: Path
) -> None:
    assert ws.read_file(str(root / "notes.txt")) == "one\ntwo\nthree\n"
    (root / "alias.txt").symlink_to("notes.txt")
    assert ws.read_file("alias.txt") == "one\ntwo\nthree\n"
    assert ws.write_file("alias.txt", "via link\n") == "wrote notes.txt (9 bytes, 1 lines)"
    assert (root / "notes.txt").read_text() == "via link\n"
    assert (root / "alias.txt").is_symlink()


@pytest.mark.parametrize("pattern", ["../*", "../outside/*", "src/../../*", "/etc/*", "a\x00"])
@pytest.mark.parametrize(
    ("tool", "key"),
    [
        ("list_files", "pattern"),
        ("grep_files", "glob"),
        ("extract_symbols", "path"),
        ("count_lines", "paths"),
    ],
)
def test_globs_leaving_root_are_refused(ws: Workspace, tool: str, key: str, pattern: str) -> None:
    args = {key: pattern, "pattern": "secret"} if tool == "grep_files" else {key: pattern}
    outcome = run_file_tool(ws, tool, args)
    assert outcome.ok is False
    assert "secret.txt" not in outcome.output
    assert OUTSIDE_TEXT.strip() not in outcome.output


# -- list_files ------------------------------------------------------------------------


@pytest.fixture
def tree(root: Path) -> Path:
    for rel in [
        "main.py",
        "README.md",
        "src/app.py",
        "src/pkg/util.py",
        "src/pkg/data.json",
        "lib/src/vendored.py",
        "src/__pycache__/app.cpython-311.pyc",
        ".git/config",
        "node_modules/left-pad/index.js",
        "__pycache__/main.cpython-311.pyc",
    ]:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text("x\n")
    return root


def test_list_all_files_skips_tool_folders(ws: Workspace, tree: Path) -> None:
    expected = [
        "README.md",
        "lib/src/vendored.py",
        "main.py",
        "notes.txt",
        "src/app.py",
        "src/pkg/data.json",
        "src/pkg/util.py",
    ]
    assert ws.list_files().splitlines() == expected
    assert run_file_tool(ws, "list_files", {}).output.splitlines() == expected


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ("**/*.py", ["lib/src/vendored.py", "main.py", "src/app.py", "src/pkg/util.py"]),
        # Patterns with a folder are anchored at the root; "*" stays in one folder.
        ("src/**", ["src/app.py", "src/pkg/data.json", "src/pkg/util.py"]),
        ("src/*.py", ["src/app.py"]),
        ("src/pkg/*.json", ["src/pkg/data.json"]),
        ("*.md", ["README.md"]),
        (
            "",
            [
                "README.md",
                "lib/src/vendored.py",
                "main.py",
                "notes.txt",
                "src/app.py",
                "src/pkg/data.json",
                "src/pkg/util.py",
            ],
        ),
    ],
)
def test_list_glob_patterns(ws: Workspace, tree: Path, pattern: str, expected: list[str]) -> None:
    assert ws.list_files(pattern).splitlines() == expected


def test_list_reports_no_match(ws: Workspace, tree: Path) -> None:
    assert ws.list_files("**/*.rs") == "no files match '**/*.rs'"


def test_list_stops_at_bound(root: Path) -> None:
    for name in "abcde":
        (root / f"{name}.py").write_text("")
    assert Workspace(root, max_list=3).list_files("*.py") == (
        "a.py\nb.py\nc.py\n(stopped at 3 files; narrow the pattern)"
    )
    assert Workspace(root, max_list=5).list_files("*.py") == "a.py\nb.py\nc.py\nd.py\ne.py"


# -- run_file_tool ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("delete_everything", {}, "unknown tool 'delete_everything'"),
        ("read_file", {}, "read_file needs argument(s) path"),
        ("write_file", {"path": "a.txt"}, "write_file needs argument(s) content"),
        ("read_file", {"path": "a", "mode": "rb"}, "read_file has no argument(s) mode; "),
        ("read_file", {"path": 5}, "read_file: path must be a string"),
        ("read_file", {"path": "notes.txt", "start_line": True}, "start_line must be a"),
        ("read_file", {"path": "notes.txt", "start_line": "two"}, "start_line must be a"),
        ("write_file", {"path": "a.txt", "content": ["x"]}, "content must be a string"),
        ("list_files", {"pattern": 3}, "pattern must be a string"),
        ("read_file", {"path": "notes.txt/x"}, "read_file failed: Not a directory"),
        ("write_file", {"path": "notes.txt/x", "content": ""}, "write_file failed: "),
    ],
)
def test_refusals_come_back_as_not_ok(ws: Workspace, name: str, args: dict, expected: str) -> None:
    outcome = run_file_tool(ws, name, args)
    assert outcome.ok is False
    assert expected in outcome.output


def test_digit_string_line_numbers_are_accepted(ws: Workspace) -> None:
    outcome = run_file_tool(
        ws, "read_file", {"path": "notes.txt", "start_line": "2", "end_line": 2}
    )
    assert (outcome.ok, outcome.output) == (True, "two")


def test_successful_write_through_dispatch(ws: Workspace, root: Path) -> None:
    content = "def f():\n    return 'ü'\n"
    args = {"path": "pkg/f.py", "content": content}
    outcome = run_file_tool(ws, "write_file", args)
    assert (outcome.ok, outcome.output) == (True, "wrote pkg/f.py (25 bytes, 2 lines)")
    assert (root / "pkg/f.py").read_text(encoding="utf-8") == content
    assert args == {"path": "pkg/f.py", "content": content}


# -- summarize_args and specs ----------------------------------------------------------


def test_summarize_args_shortens_and_caps() -> None:
    args = {"path": "a.py", "content": "x" * 500, "note": "y" * 60}
    assert summarize_args(args, limit=500) == (
        f'{{"path": "a.py", "content": "<500 chars>", "note": "{"y" * 60}"}}'
    )
    capped = summarize_args({f"key{i}": "value" for i in range(40)})
    assert len(capped) == 120
    assert capped.endswith("…")
    assert summarize_args({"path": "ä.py"}) == '{"path": "ä.py"}'


def test_new_files_get_the_usual_permissions(ws: Workspace, root: Path) -> None:
    old = os.umask(0o022)
    try:
        (root / "plain.txt").write_text("x")
        ws.write_file("new.txt", "hi")
    finally:
        os.umask(old)
    assert stat.S_IMODE((root / "new.txt").stat().st_mode) == stat.S_IMODE(
        (root / "plain.txt").stat().st_mode
    )


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("read_file", {"path": "notes.txt", "start_line": "\u00b2"}),
        ("write_file", {"path": "x.txt", "content": "\ud83d"}),
        ("read_file", {"path": "\ud800"}),
    ],
)
def test_odd_arguments_are_refused_not_raised(ws: Workspace, name: str, args: dict) -> None:
    assert run_file_tool(ws, name, args).ok is False
