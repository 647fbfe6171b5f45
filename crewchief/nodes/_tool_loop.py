"""The executor's tool loop: model → tool calls → results → model, bounded in steps."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage

from crewchief import prompts
from crewchief.models.registry import ModelReply, Usage
from crewchief.services import NodeDeps
from crewchief.tools.files import FILE_TOOLS, run_file_tool, summarize_args
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
) -> LoopResult:
    """Let the delegate model use the file tools until it answers without a tool call.

    Each tool call is recorded as a ``task.tool_called`` event. After
    ``max_steps`` model calls that still ask for tools, one last call without
    tools asks for the report.
    """
    result = LoopResult(text="", model="")
    step = 0
    for _ in range(max_steps):
        reply = await _call(deps, messages, operation_id, task, tools=True)
        result.usage, result.model = result.usage + reply.usage, reply.model
        calls = reply.message.tool_calls
        if not calls:
            result.text = reply.text
            if reply.repairs:
                await _record_repairs(deps, operation_id, task, step := step + 1, reply)
            return result
        messages.append(reply.message)
        for i, call in enumerate(calls):
            outcome = await asyncio.to_thread(run_file_tool, workspace, call["name"], call["args"])
            step += 1
            result.tool_calls += 1
            if outcome.ok and call["name"] == "write_file":
                result.changed.append(str(call["args"].get("path")))
            await deps.recorder.tool_called(
                operation_id,
                task,
                step,
                {
                    "tool": call["name"],
                    "args": summarize_args(call["args"]),
                    "ok": outcome.ok,
                    "output": outcome.output[:_OUTPUT_IN_EVENT],
                    "repairs": reply.repairs if i == 0 else [],
                },
            )
            body = outcome.output if outcome.ok else f"error: {outcome.output}"
            messages.append(ToolMessage(body, tool_call_id=call["id"], name=call["name"]))
    messages.append(HumanMessage(prompts.TASK_OUT_OF_STEPS))
    reply = await _call(deps, messages, operation_id, task, tools=False)
    result.usage, result.model, result.text = result.usage + reply.usage, reply.model, reply.text
    return result


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


async def _record_repairs(deps: NodeDeps, op: str, task: int, step: int, reply: ModelReply) -> None:
    """A reply whose every call was refused or dropped still shows up in the events."""
    await deps.recorder.tool_called(
        op,
        task,
        step,
        {"tool": None, "args": "", "ok": False, "output": "", "repairs": reply.repairs},
    )
