"""The file tools offered to task executors: specs (OpenAI format) and dispatch."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from crewchief.tools.workspace import ToolError, Workspace


def _spec(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict:
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
)
READ_ONLY_TOOLS: frozenset[str] = frozenset(TOOL_NAMES) - {"write_file"}

_PATH = {"type": "string", "description": "File path relative to the workspace root."}

FILE_TOOLS: list[dict[str, Any]] = [
    _spec(
        "read_file",
        "Read a text file of the workspace, optionally only lines start_line..end_line.",
        {
            "path": _PATH,
            "start_line": {"type": "integer", "description": "First line (1-based)."},
            "end_line": {"type": "integer", "description": "Last line (inclusive)."},
        },
        ["path"],
    ),
    _spec(
        "write_file",
        "Create or replace a text file of the workspace with the full new content.",
        {"path": _PATH, "content": {"type": "string", "description": "The complete file content."}},
        ["path", "content"],
    ),
    _spec(
        "list_files",
        "List files of the workspace matching a glob pattern (default: all).",
        {"pattern": {"type": "string", "description": "Glob such as '**/*.py'."}},
        [],
    ),
]

_PARAMS = {spec["function"]["name"]: spec["function"]["parameters"] for spec in FILE_TOOLS}
_TYPES = {"string": str, "integer": int}


@dataclass(frozen=True, slots=True)
class ToolOutcome:
    ok: bool
    output: str


def _check_args(name: str, args: dict[str, Any]) -> dict[str, Any]:
    params = _PARAMS[name]
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
        expected = _TYPES[params["properties"][key]["type"]]
        if expected is int and isinstance(value, str) and value.strip().isdecimal():
            args[key] = int(value)
        elif not isinstance(value, expected) or isinstance(value, bool):
            kind = params["properties"][key]["type"]
            raise ToolError(f"{name}: {key} must be {'an' if kind == 'integer' else 'a'} {kind}")
    return args


def run_file_tool(workspace: Workspace, name: str, args: dict[str, Any]) -> ToolOutcome:
    """Run one tool call; refusals and failures come back as ``ok=False`` with the reason."""
    if name not in _PARAMS:
        return ToolOutcome(False, f"unknown tool {name!r}")
    try:
        checked = _check_args(name, dict(args))
        handler = getattr(workspace, name)
        return ToolOutcome(True, handler(**checked))
    except ToolError as exc:
        return ToolOutcome(False, str(exc))
    except (UnicodeError, ValueError) as exc:
        return ToolOutcome(False, f"{name}: invalid argument: {exc}")
    except OSError as exc:
        return ToolOutcome(False, f"{name} failed: {exc.strerror or exc}")


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
