"""The executor's tool loop: model → tool calls → results → model, bounded in steps."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage

from crewchief import prompts
from crewchief.models.registry import ModelReply, Usage
from crewchief.nodes._task_context import Edit, NamedFile, strip_code_blocks, whole_file_edits
from crewchief.services import NodeDeps
from crewchief.tools.files import FILE_TOOLS, ToolOutcome, run_file_tool, summarize_args
from crewchief.tools.workspace import Workspace

_OUTPUT_IN_EVENT = 300


@dataclass(slots=True)
class LoopResult:
    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    tool_calls: int = 0
    changed: list[str] = field(default_factory=list)


async def run_tool_loop(
    deps: NodeDeps,
    messages: list[BaseMessage],
    workspace: Workspace,
    *,
    operation_id: str,
    task: int,
    max_steps: int,
    files: list[NamedFile],
) -> LoopResult:
    """Let the delegate model use the file tools until it answers without a tool call.

    Each tool call is recorded as a ``task.tool_called`` event. After
    ``max_steps`` model calls that still ask for tools, one last call without
    tools asks for the report. Files the final reply writes out in full (see
    :func:`whole_file_edits`) are then written like ``write_file`` calls.
    """
    result = LoopResult(text="", model="")
    run = _Runner(deps, workspace, operation_id, task, result)
    if files:
        # Edit first: the files are known, so ask for their new content without tools.
        # Small models are far better at rewriting a file they see than at tool calls.
        reply = await _call(deps, messages, operation_id, task, tools=False)
        result.usage, result.model = result.usage + reply.usage, reply.model
        edits, notes = whole_file_edits(reply.text, files)
        if edits:
            await _finish(run, reply.text, edits, notes)
            return result
        if notes:
            await run.record(None, {}, None, notes)
    for _ in range(max_steps):
        reply = await _call(deps, messages, operation_id, task, tools=True)
        result.usage, result.model = result.usage + reply.usage, reply.model
        calls = reply.message.tool_calls
        if not calls:
            if reply.repairs:
                await run.record(None, {}, None, reply.repairs)
                if not reply.text.strip():
                    # Every call was refused or dropped: say so and let the model try again.
                    messages.append(reply.message)
                    messages.append(
                        HumanMessage(
                            prompts.TASK_CALLS_REFUSED.format(reasons="; ".join(reply.repairs))
                        )
                    )
                    continue
            await _finish(run, reply.text, *_edits(reply.text, files))
            return result
        messages.append(reply.message)
        for i, call in enumerate(calls):
            outcome = await run.call(call["name"], call["args"], reply.repairs if i == 0 else [])
            body = outcome.output if outcome.ok else f"error: {outcome.output}"
            messages.append(ToolMessage(body, tool_call_id=call["id"], name=call["name"]))
    messages.append(HumanMessage(prompts.TASK_OUT_OF_STEPS))
    reply = await _call(deps, messages, operation_id, task, tools=False)
    result.usage, result.model = result.usage + reply.usage, reply.model
    await _finish(run, reply.text, *_edits(reply.text, files))
    return result


@dataclass(slots=True)
class _Runner:
    deps: NodeDeps
    workspace: Workspace
    op: str
    task: int
    result: LoopResult
    step: int = 0

    async def call(self, name: str, args: dict[str, Any], repairs: list[str]) -> ToolOutcome:
        outcome = await asyncio.to_thread(run_file_tool, self.workspace, name, args)
        self.result.tool_calls += 1
        if outcome.ok and name == "write_file":
            self.result.changed.append(str(args.get("path")))
        await self.record(name, args, outcome, repairs)
        return outcome

    async def record(
        self,
        name: str | None,
        args: dict[str, Any],
        outcome: ToolOutcome | None,
        repairs: list[str],
    ) -> None:
        self.step += 1
        await self.deps.recorder.tool_called(
            self.op,
            self.task,
            self.step,
            {
                "tool": name,
                "args": summarize_args(args) if args else "",
                "ok": outcome.ok if outcome else False,
                "output": outcome.output[:_OUTPUT_IN_EVENT] if outcome else "",
                "repairs": repairs,
            },
        )


def _edits(text: str, files: list[NamedFile]) -> tuple[list[Edit], list[str]]:
    return whole_file_edits(text, files) if files else ([], [])


async def _finish(run: _Runner, text: str, edits: list[Edit], notes: list[str]) -> None:
    """Apply the whole-file edits of the final reply; keep the prose as the report."""
    for edit in edits:
        note = f"applied the new {edit.path} written out in the reply"
        await run.call("write_file", {"path": edit.path, "content": edit.content}, [note])
    if notes:
        await run.record(None, {}, None, notes)
    report = strip_code_blocks(text) if edits else text
    if run.result.changed:
        changed = ", ".join(dict.fromkeys(run.result.changed))
        report = f"{report}\n\nChanged: {changed}".strip()
    run.result.text = report


async def _call(
    deps: NodeDeps, messages: list[BaseMessage], op: str, task: int, *, tools: bool
) -> ModelReply:
    return await deps.call_model(
        "delegate",
        messages,
        effort="medium",
        node="execute_task",
        operation_id=op,
        task=task,
        tools=FILE_TOOLS if tools else None,
    )
