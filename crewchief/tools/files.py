"""The file tools offered to task executors: specs (OpenAI format) and dispatch.

Descriptions are written for small models: each says when to use the tool,
what comes back, and what every argument means. :func:`run_file_tool` checks
arguments against these specs (leniently: ``"2"`` for 2, ``"true"`` for true,
one string for a list) and never raises for bad input from a model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from crewchief.tools.grep import MAX_CONTEXT
from crewchief.tools.workspace import MAX_SEARCH_HITS, ToolError, Workspace


def tool_spec(
    name: str, description: str, properties: dict[str, Any], required: list[str]
) -> dict[str, Any]:
    """An OpenAI-format function tool spec."""
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": description,
            "parameters": {"type": "object", "properties": properties, "required": required},
        },
    }


# Every file tool, in the order they are offered. Skills name a subset in ``allowed-tools``.
TOOL_NAMES: tuple[str, ...] = (
    "read_file",
    "write_file",
    "list_files",
    "grep_files",
    "summarize_file",
    "extract_symbols",
    "count_lines",
    "search_code",
)
READ_ONLY_TOOLS: frozenset[str] = frozenset(TOOL_NAMES) - {"write_file"}

_PATH = {"type": "string", "description": "File path relative to the workspace root."}
_GLOB = "Glob relative to the workspace root: '*' within one folder, '**' across folders"

FILE_TOOLS: list[dict[str, Any]] = [
    tool_spec(
        "read_file",
        "Read a text file of the workspace, optionally only lines start_line..end_line. "
        "For a big file, use summarize_file or extract_symbols first, then read a line range.",
        {
            "path": _PATH,
            "start_line": {"type": "integer", "description": "First line to read (1-based)."},
            "end_line": {"type": "integer", "description": "Last line to read (inclusive)."},
        },
        ["path"],
    ),
    tool_spec(
        "write_file",
        "Create or replace a text file of the workspace with the full new content. "
        "Missing folders are created.",
        {"path": _PATH, "content": {"type": "string", "description": "The complete file content."}},
        ["path", "content"],
    ),
    tool_spec(
        "list_files",
        "List files of the workspace matching a glob pattern (default: all files). "
        "Files ignored by .gitignore are left out.",
        {"pattern": {"type": "string", "description": f"{_GLOB}, e.g. '**/*.py' or 'src/*'."}},
        [],
    ),
    tool_spec(
        "grep_files",
        "Search file contents with a regular expression. Returns matching lines as "
        "'path:line: text' (at most 100). Use it to find where something is defined or used.",
        {
            "pattern": {
                "type": "string",
                "description": "Regular expression (Python syntax), e.g. 'def load_' or 'TODO'.",
            },
            "glob": {
                "type": "string",
                "description": f"Only search files matching this glob. {_GLOB}. Default: all.",
            },
            "context": {
                "type": "integer",
                "description": f"Lines to show before and after each match (0-{MAX_CONTEXT}). "
                "Default 0.",
            },
            "ignore_case": {
                "type": "boolean",
                "description": "Match upper and lower case alike. Default false.",
            },
        },
        ["pattern"],
    ),
    tool_spec(
        "summarize_file",
        "Summarize a file without reading all of it: size, line count, language, imports, "
        "classes, functions, TODO/FIXME notes, and its first and last lines. Much shorter "
        "than read_file.",
        {"path": _PATH},
        ["path"],
    ),
    tool_spec(
        "extract_symbols",
        "List the definitions (classes, functions, methods, types) of source code with their "
        "line numbers and signatures, without the bodies. Works for Python, JavaScript, "
        "TypeScript, Rust and Go.",
        {
            "path": {
                "type": "string",
                "description": "A file, a folder, or a glob such as 'src/**/*.py' "
                "(at most 50 files).",
            }
        },
        ["path"],
    ),
    tool_spec(
        "count_lines",
        "Count lines of many files at once: lines, code, comment and blank lines per file, "
        "per language and in total. Use it to size up a codebase or a folder.",
        {
            "paths": {
                "type": "array",
                "items": {"type": "string"},
                "description": "File paths, folders or globs, e.g. ['src/**/*.py', 'README.md'].",
            }
        },
        ["paths"],
    ),
    tool_spec(
        "search_code",
        "Find the code that answers a question, by keywords and by meaning, when you do not "
        "know the exact text to grep for. Returns the best-matching functions, classes or "
        "document sections as 'path:start-end name (why it matched)' with their first lines; "
        "read_file that line range to see all of one.",
        {
            "query": {
                "type": "string",
                "description": "What you are looking for, in words or identifiers, e.g. "
                "'where the retry delay is computed'.",
            },
            "k": {
                "type": "integer",
                "description": f"How many places to return (1-{MAX_SEARCH_HITS}). Default 8.",
            },
            "glob": {
                "type": "string",
                "description": f"Only search files matching this glob. {_GLOB}. Default: all.",
            },
        },
        ["query"],
    ),
]

_BY_NAME = {spec["function"]["name"]: spec for spec in FILE_TOOLS}
_PARAMS = {name: spec["function"]["parameters"] for name, spec in _BY_NAME.items()}
_ARTICLE = {"integer": "an integer", "boolean": "true or false", "array": "a list of strings"}


def tool_specs(names: Iterable[str]) -> list[dict[str, Any]]:
    """The specs of the named tools, in the canonical order of :data:`TOOL_NAMES`.

    Raises:
        ValueError: a name is not a file tool (the message names it).
    """
    wanted = set(names)
    unknown = sorted(wanted - set(TOOL_NAMES))
    if unknown:
        raise ValueError(
            f"unknown file tool(s) {', '.join(unknown)}; the tools are {', '.join(TOOL_NAMES)}"
        )
    return [_BY_NAME[name] for name in TOOL_NAMES if name in wanted]


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    """What one tool call gave: the text for the model, and whether it succeeded."""

    ok: bool
    output: str


def check_args(name: str, params: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
    """``args`` checked against a tool's JSON-schema ``params`` (coerced in place).

    Raises:
        ToolError: a required argument is missing, one is unknown, or one has the wrong type.
    """
    missing = [p for p in params["required"] if p not in args]
    if missing:
        raise ToolError(f"{name} needs argument(s) {', '.join(missing)}")
    unknown = sorted(set(args) - set(params["properties"]))
    if unknown:
        raise ToolError(
            f"{name} has no argument(s) {', '.join(unknown)}; "
            f"it takes {', '.join(params['properties'])}"
        )
    for key, value in args.items():
        kind = params["properties"][key]["type"]
        checked = _coerce(kind, value)
        if checked is None:
            raise ToolError(f"{name}: {key} must be {_ARTICLE.get(kind, 'a ' + kind)}")
        args[key] = checked
    return args


def _coerce(kind: str, value: Any) -> Any:
    """``value`` as the JSON-schema type ``kind``, or None when it cannot be one."""
    if kind == "string":
        return value if isinstance(value, str) else None
    if kind == "integer":
        if isinstance(value, str) and value.strip().isdecimal():
            return int(value)
        return value if isinstance(value, int) and not isinstance(value, bool) else None
    if kind == "boolean":
        if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
            return value.strip().lower() == "true"
        return value if isinstance(value, bool) else None
    if kind == "array":
        # Small models often send one path, or the list as JSON text.
        if isinstance(value, str):
            try:
                value = json.loads(value) if value.lstrip().startswith("[") else [value]
            except ValueError:
                return None
        ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
        return value if ok else None
    return None


def run_file_tool(workspace: Workspace, name: str, args: dict[str, Any]) -> ToolOutcome:
    """Run one tool call; refusals and failures come back as ``ok=False`` with the reason."""
    if name not in _PARAMS:
        return ToolOutcome(False, f"unknown tool {name!r}")
    try:
        if not isinstance(args, dict):
            raise ToolError(f"{name}: arguments must be an object of named arguments")
        checked = check_args(name, _PARAMS[name], dict(args))
        handler = getattr(workspace, name)
        return ToolOutcome(True, handler(**checked))
    except ToolError as exc:
        return ToolOutcome(False, str(exc))
    except (UnicodeError, ValueError) as exc:
        return ToolOutcome(False, f"{name}: invalid argument: {exc}")
    except OSError as exc:
        return ToolOutcome(False, f"{name} failed: {exc.strerror or exc}")
    except RecursionError:
        return ToolOutcome(False, f"{name} failed: the input is nested too deeply to parse")


def summarize_args(args: dict[str, Any], limit: int = 120) -> str:
    """A short, single-line view of tool arguments for events and logs."""
    shown = {}
    for key, value in args.items():
        if isinstance(value, str) and len(value) > 60:
            shown[key] = f"<{len(value)} chars>"
        else:
            shown[key] = value
    text = json.dumps(shown, ensure_ascii=False)
    return text if len(text) <= limit else text[: limit - 1] + "…"
