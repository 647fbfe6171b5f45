"""What an executor sees besides its task: the workspace files the task names.

Giving the named files up front saves a tool round trip for every model and
is what lets small local models do real edits: they are poor at exploring
with tools but good at rewriting a file they can see.

Small models also often answer with the new file as text instead of calling
``write_file``. The executor's prompt allows exactly that (the path on a line
of its own, then the complete content in one code block), and
:func:`whole_file_edits` turns such a reply into writes.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import PurePosixPath

from crewchief.tools.workspace import ToolError, Workspace

MAX_FILES = 4
MAX_FILE_CHARS = 24_000
_FILE_TOKEN = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-][\w.-]*\.[A-Za-z0-9]{1,8})(?![\w/-])")
_FENCE = re.compile(r"```([\w+#.-]*)[^\n]*\n(.*?)```", re.S)
_FENCED_PATH = re.compile(r"```[ \t]*\n[ \t]*`?([\w./-]+\.[A-Za-z0-9]{1,8})`?[ \t]*\n```[ \t]*\n?")
_LABEL = re.compile(r"^[\s>*#`_-]*(?:file:\s*)?`?([\w./-]+\.[A-Za-z0-9]{1,8})`?\**:?\**\s*$", re.I)
_LANGS = {
    ".py": "python",
    ".js": "javascript",
    ".ts": "typescript",
    ".rs": "rust",
    ".go": "go",
    ".md": "markdown",
    ".json": "json",
    ".toml": "toml",
    ".yaml": "yaml",
    ".yml": "yaml",
    ".sh": "bash",
}


@dataclass(frozen=True, slots=True)
class NamedFile:
    path: str
    content: str


@dataclass(frozen=True, slots=True)
class Edit:
    path: str
    content: str


def mentioned_paths(text: str) -> set[str]:
    """File paths a text names (``utils.py``, ``src/app/main.ts``), without touching the disk."""
    return {m.group(1).removeprefix("./") for m in _FILE_TOKEN.finditer(text)}


def same_file(a: str, b: str) -> bool:
    """Whether two mentions may name one file: equal, or one is the other's path tail."""
    return a == b or a.endswith("/" + b) or b.endswith("/" + a)


def named_files(workspace: Workspace, *texts: str) -> list[NamedFile]:
    """Existing workspace text files named in ``texts`` (first mention first, bounded)."""
    found: list[NamedFile] = []
    seen: set[str] = set()
    for text in texts:
        for match in _FILE_TOKEN.finditer(text):
            token = match.group(1).removeprefix("./")
            if token in seen or len(found) == MAX_FILES:
                continue
            seen.add(token)
            try:
                content = workspace.read_file(token)
            except ToolError:
                continue
            if len(content) <= MAX_FILE_CHARS:
                found.append(NamedFile(token, content))
    return found


def render_named_files(files: list[NamedFile]) -> str:
    if not files:
        return ""
    blocks = []
    for f in files:
        lang = _LANGS.get(PurePosixPath(f.path).suffix, "")
        body = f.content if f.content.endswith("\n") else f.content + "\n"
        blocks.append(f"{f.path}\n```{lang}\n{body}```")
    return "\nFiles named in the task (current content):\n\n" + "\n\n".join(blocks) + "\n"


_READ_ONLY = re.compile(
    r"^\s*(open|read|review|inspect|look|list|find|locate|check|analy[sz]e|explain|summari[sz]e|"
    r"verify|understand|examine|identify|search|study|report)\b",
    re.I,
)


_CHANGE = re.compile(
    r"\b(fix|add|update|remove|rename|change|write|create|implement|refactor|replace|delete|"
    r"edit|modify|insert|move|convert|document|format)\b",
    re.I,
)


def asks_for_changes(description: str) -> bool:
    """False for tasks that only look at things ("Open utils.py", "Review the tests").

    "Find and fix the bug" starts like a read-only task but asks for a change.
    """
    return _READ_ONLY.match(description) is None or _CHANGE.search(description) is not None


def _python_names(source: str) -> set[str]:
    """Top-level definitions and imported names of a module."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update(alias.asname or alias.name for alias in node.names)
    return names


def _python_problem(old: str, new: str) -> str | None:
    """Why a rewritten Python file must not replace the old one, if it must not."""
    try:
        new_names = _python_names(new)
    except SyntaxError as exc:
        return f"it is not valid Python ({exc.msg}, line {exc.lineno})"
    try:
        lost = sorted(_python_names(old) - new_names)
    except SyntaxError:
        return None
    if lost:
        return "it drops " + ", ".join(lost[:5]) + (" and more" if len(lost) > 5 else "")
    return None


def whole_file_edits(reply: str, files: list[NamedFile]) -> tuple[list[Edit], list[str]]:
    """Files written out in ``reply`` as "path line + code block", and notes on skipped ones.

    A block counts when the line before it names a file the task was given,
    or, when the task was given exactly one file, when it is the reply's only
    block. A Python file must still parse and keep every top-level definition
    and import of the old one (the usual failure of a small model rewriting a
    whole file is to drop or replace parts of it); otherwise it is skipped
    with a note.
    """
    known = {f.path: f for f in files}
    # A path written in a fence of its own ("```\nutils.py\n```") is a label, not a block.
    reply = _FENCED_PATH.sub(lambda m: m.group(1) + "\n", reply)
    blocks = list(_FENCE.finditer(reply))
    edits: list[Edit] = []
    notes: list[str] = []
    for block in blocks:
        path = _match_label(_label_before(reply, block.start()), known)
        if path not in known:
            if len(files) == 1 and len(blocks) == 1 and path is None:
                path = files[0].path
            else:
                continue
        lang = block.group(1).lower()
        expected = _LANGS.get(PurePosixPath(path).suffix, "")
        if lang and expected and lang not in (expected, PurePosixPath(path).suffix[1:]):
            continue  # a ```json tool call or a ```bash command, not the file
        content = block.group(2)
        if content.strip() == known[path].content.strip():
            continue
        if path.endswith(".py") and (problem := _python_problem(known[path].content, content)):
            notes.append(f"did not apply the new {path} written in the reply: {problem}")
            continue
        edits.append(Edit(path, content))
    return edits, notes


def _match_label(label: str | None, known: dict[str, NamedFile]) -> str | None:
    """The given file a label means: exact, or by its tail ("/path/to/utils.py", "./utils.py")."""
    if label is None or label in known:
        return label
    parts = PurePosixPath(label).parts
    tails = [p for p in known if parts[-len(PurePosixPath(p).parts) :] == PurePosixPath(p).parts]
    return tails[0] if len(tails) == 1 else label


def _label_before(text: str, start: int) -> str | None:
    lines = text[:start].rstrip("\n").splitlines()
    for line in reversed(lines[-2:]):
        if not line.strip():
            continue
        match = _LABEL.match(line)
        return match.group(1) if match else None
    return None


def strip_code_blocks(text: str) -> str:
    """The reply without its code blocks and their path lines (the report the task keeps)."""
    kept = []
    for line in _FENCE.sub("\x00", text).splitlines():
        if kept and line.startswith("\x00") and _LABEL.match(kept[-1]):
            kept.pop()
        kept.append(line.replace("\x00", ""))
    return re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
