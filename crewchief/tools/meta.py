"""Meta-tools: how the planner looks at the workspace without paying to read it.

The orchestrator (the expensive model) is offered five tools while it plans.
None of them hands it raw files. For each call crewchief runs the matching
file tool itself, gives the output and the planner's question to the delegate
(the cheap model), lets the delegate use the read-only file tools for a few
more steps, and returns the delegate's consolidated answer. The delegate's
calls are recorded in the usage ledger under the ``plan`` node with the
purpose ``meta:<tool>``, so an operation shows which model paid for what.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage, ToolMessage

from crewchief import prompts
from crewchief.errors import ModelCallError
from crewchief.models.types import Usage
from crewchief.tools.files import (
    READ_ONLY_TOOLS,
    check_args,
    run_file_tool,
    tool_spec,
    tool_specs,
)
from crewchief.tools.workspace import ToolError, Workspace

# What the delegate sees of one tool output, and what the planner gets when the
# delegate cannot answer (then the planner pays for the raw output, bounded).
_SEED_CHARS = 16_000
_RAW_FALLBACK_CHARS = 3_000


_QUESTION = {
    "question": {
        "type": "string",
        "description": "What you want to know; the answer is written for this question.",
    }
}


def _spec(name: str, description: str, properties: dict[str, Any], required: list[str]) -> dict:
    return tool_spec(name, description, {**properties, **_QUESTION}, required)


_PATH = {"type": "string", "description": "File path relative to the workspace root."}

META_TOOLS: list[dict[str, Any]] = [
    _spec(
        "list_project_files",
        "List the workspace's files (a glob such as 'src/**/*.py'; default all), summarized.",
        {"pattern": {"type": "string", "description": "Glob pattern, default '**/*'."}},
        [],
    ),
    _spec(
        "search_codebase",
        "Search the workspace's code by keywords and meaning, and get the relevant places "
        "explained.",
        {
            "query": {
                "type": "string",
                "description": "What to look for: words, a question, or an identifier.",
            },
            "glob": {"type": "string", "description": "Only files matching this glob."},
        },
        ["query"],
    ),
    _spec(
        "get_file_summary",
        "Size, language, imports, classes, functions and TODOs of one file.",
        {"path": _PATH},
        ["path"],
    ),
    _spec(
        "get_file_structure",
        "The definitions (classes, functions, methods with signatures and lines) of a file.",
        {"path": _PATH},
        ["path"],
    ),
    _spec(
        "read_project_file",
        "Have a file read for you; you get the parts that answer your question.",
        {"path": _PATH},
        ["path"],
    ),
]
META_TOOL_NAMES: tuple[str, ...] = tuple(spec["function"]["name"] for spec in META_TOOLS)
_PARAMS = {spec["function"]["name"]: spec["function"]["parameters"] for spec in META_TOOLS}

# The file tool crewchief runs first for each meta-tool, and how its arguments map.
_SEEDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "list_project_files": ("list_files", ("pattern",)),
    "search_codebase": ("search_code", ("query", "glob")),
    "get_file_summary": ("summarize_file", ("path",)),
    "get_file_structure": ("extract_symbols", ("path",)),
    "read_project_file": ("read_file", ("path",)),
}


@dataclass(slots=True)
class MetaAnswer:
    """What the planner gets back, and what it cost."""

    ok: bool
    answer: str
    model: str = ""
    usage: Usage = field(default_factory=Usage)
    tool_calls: int = 0


def _seed(workspace: Workspace, name: str, args: dict[str, Any]) -> tuple[str, str, bool]:
    """Run the file tool behind meta-tool ``name``: (tool, output, ok)."""
    tool, params = _SEEDS[name]
    seed_args = {k: args[k] for k in params if isinstance(args.get(k), str) and args[k].strip()}
    if tool == "search_code" and workspace.searcher is None:
        tool = "grep_files"  # code search is off: look for the query's text
        import regex

        seed_args = {
            "pattern": regex.escape(seed_args.get("query", "").strip()),
            "ignore_case": True,
            **({"glob": seed_args["glob"]} if "glob" in seed_args else {}),
        }
    outcome = run_file_tool(workspace, tool, seed_args)
    text = outcome.output
    if len(text) > _SEED_CHARS:
        text = text[:_SEED_CHARS] + "\n… (cut here; use the tools with a line range to see more)"
    return tool, text, outcome.ok


def _check(name: str, args: dict[str, Any]) -> str | None:
    """Why a meta-tool call cannot run, or None."""
    if name not in _SEEDS:
        return f"unknown tool {name!r}; the planner's tools are {', '.join(META_TOOL_NAMES)}"
    if not isinstance(args, dict):
        return f"{name}: arguments must be an object of named arguments"
    params = _PARAMS[name]
    try:
        check_args(name, params, dict(args))
    except ToolError as exc:
        return str(exc)
    empty = [p for p in params["required"] if not args[p].strip()]
    return f"{name}: {', '.join(empty)} must not be empty" if empty else None


async def run_meta_tool(
    deps: Any,
    workspace: Workspace,
    name: str,
    args: dict[str, Any],
    *,
    operation_id: str,
    max_steps: int,
) -> MetaAnswer:
    """Answer one meta-tool call with the delegate model and the read-only file tools.

    Args:
        deps: The node's :class:`~crewchief.runtime.services.NodeDeps` (model calls and ledger).
        max_steps: Delegate model calls allowed; the last one is offered no tools.

    Returns:
        The consolidated answer. A refused call (bad arguments, a path outside the
        workspace) comes back with ``ok=False`` and the reason, without a model call.
    """
    problem = _check(name, args)
    if problem:
        return MetaAnswer(False, problem)
    seed_tool, output, seed_ok = await asyncio.to_thread(_seed, workspace, name, args)
    if not seed_ok:
        return MetaAnswer(False, output)
    question = str(args.get("question") or "").strip() or _default_question(name, args)
    shown = {k: v for k, v in args.items() if k != "question"}
    messages: list[BaseMessage] = [
        SystemMessage(prompts.META_SYSTEM),
        HumanMessage(
            prompts.META_USER.format(
                tool=name,
                args=json.dumps(shown, ensure_ascii=False),
                question_marker=prompts.QUESTION_MARKER,
                question=question,
                seed_tool=seed_tool,
                output=output,
            )
        ),
    ]
    result = MetaAnswer(True, "")
    try:
        await _delegate_loop(deps, workspace, messages, result, name, operation_id, max_steps)
    except ModelCallError as exc:
        raw = output[:_RAW_FALLBACK_CHARS]
        result.answer = f"(the delegate model could not answer: {exc})\n{seed_tool} output:\n{raw}"
        return result
    if not result.answer.strip():
        result.answer = output[:_RAW_FALLBACK_CHARS]
    return result


async def _delegate_loop(
    deps: Any,
    workspace: Workspace,
    messages: list[BaseMessage],
    result: MetaAnswer,
    name: str,
    operation_id: str,
    max_steps: int,
) -> None:
    specs = tool_specs(sorted(READ_ONLY_TOOLS))
    for step in range(max_steps):
        last = step == max_steps - 1
        reply = await deps.call_model(
            "delegate",
            messages,
            effort="low",
            node="plan",
            operation_id=operation_id,
            tools=None if last else specs,
            purpose=f"meta:{name}",
        )
        result.usage = result.usage + reply.usage
        result.model = reply.model
        calls = reply.message.tool_calls
        if not calls:
            result.answer = reply.text.strip()
            return
        messages.append(reply.message)
        for call in calls:
            outcome = await asyncio.to_thread(run_file_tool, workspace, call["name"], call["args"])
            result.tool_calls += 1
            body = outcome.output if outcome.ok else f"error: {outcome.output}"
            if len(body) > _SEED_CHARS:
                body = body[:_SEED_CHARS] + "\n… (cut here)"
            messages.append(ToolMessage(body, tool_call_id=call["id"], name=call["name"]))
        if step == max_steps - 2:
            messages.append(HumanMessage("Answer the question now, without calling tools."))


def _default_question(name: str, args: dict[str, Any]) -> str:
    target = args.get("path") or args.get("query") or args.get("pattern") or "the workspace"
    return {
        "list_project_files": f"Which files are there ({target}) and how are they organized?",
        "search_codebase": f"Where does {target!r} occur, and what is it used for there?",
        "get_file_summary": f"What is in {target}?",
        "get_file_structure": f"What does {target} define?",
        "read_project_file": f"What does {target} contain that matters for the plan?",
    }[name]
