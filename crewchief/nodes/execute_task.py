"""Carry out one task of the plan with the delegate model."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from crewchief import logs, prompts
from crewchief.errors import BudgetExceeded, NotAllowed
from crewchief.models.types import Usage
from crewchief.nodes._search import open_workspace
from crewchief.nodes._tool_loop import ToolPolicy, run_tool_loop, skill_payload
from crewchief.nodes.task_context import (
    NamedFile,
    asks_for_changes,
    named_files,
    render_named_files,
)
from crewchief.runtime.deps import NodeDeps
from crewchief.skills.registry import ActiveSkill, activate_skill
from crewchief.state import TaskInput, TaskOutcome
from crewchief.tools.files import TOOL_NAMES
from crewchief.tools.mcp import McpTool, pattern_server


def _dependency_results(state: TaskInput) -> str:
    return "\n\n".join(
        f"{prompts.RESULT_MARKER} {dep}:\n{result}"
        for dep, result in sorted(state["dependencies"].items(), key=lambda kv: int(kv[0]))
    )


def _messages(
    state: TaskInput,
    tools: bool,
    files: list[NamedFile] | None = None,
    skill: ActiveSkill | None = None,
) -> list:
    task = state["task"]
    deps_text = _dependency_results(state)
    user = prompts.TASK_USER.format(
        request_marker=prompts.REQUEST_MARKER,
        request=state["request"],
        task_marker=prompts.TASK_MARKER,
        description=task["description"],
        workspace=state.get("workspace") or "(none)",
        dependencies=("\nResults of the tasks this one depends on:\n\n" + deps_text)
        if deps_text
        else "",
    ) + render_named_files(files or [])
    if task.get("instructions"):
        user += prompts.TASK_INSTRUCTIONS.format(instructions=task["instructions"])
    system = prompts.TASK_SYSTEM_TOOLS if tools else prompts.TASK_SYSTEM
    if skill is not None:
        system += prompts.TASK_SKILL.format(name=skill.name, instructions=skill.instructions)
    return [SystemMessage(system), HumanMessage(user)]


async def _mcp_tools(
    deps: NodeDeps, servers: list[str] | None
) -> tuple[dict[str, McpTool], list[str]]:
    """The MCP tools of these servers (default: every configured one), and the problems."""
    if not deps.mcp.names or servers == []:
        return {}, []
    tools, problems = await deps.mcp.tools(servers)
    return {t.name: t for t in tools}, problems


async def _policy(
    state: TaskInput, deps: NodeDeps, root: str | None, files: list[NamedFile]
) -> tuple[ToolPolicy, ActiveSkill | None, list[str]]:
    """The task's skill, activated (tools restricted, its model chosen), or the offer of one;
    with the MCP tools it may use, and notes on MCP servers that could not be reached."""
    skills = await asyncio.to_thread(deps.skills)
    task = state["task"]
    ids = sorted(state["dependencies"], key=int)
    context = {
        "request": state["request"],
        "workspace": root,
        "files": ", ".join(f.path for f in files),
        "dependencies": f"the results of task(s) {', '.join(ids)}, shown below" if ids else "",
    }

    def activate(name: str) -> ActiveSkill:
        return activate_skill(skills, name, task["description"], **context)

    if task.get("skill"):
        active = await asyncio.to_thread(activate, task["skill"])
        # Only the servers the skill names are reached: its allowed-tools name nothing else.
        named = {pattern_server(e) for e in active.allowed_tools}
        mcp, problems = await _mcp_tools(deps, sorted(n for n in named if n))
        policy = ToolPolicy(mcp=mcp, files=root is not None)
        policy.apply(active)
        await deps.recorder.skill_activated(
            state["operation_id"], task["id"], skill_payload(policy, by="planner")
        )
        return policy, active, problems
    offered = {m.name: m.description for m in skills.usable(workspace=bool(root))}
    mcp, problems = await _mcp_tools(deps, None)
    policy = ToolPolicy(
        allowed=frozenset(TOOL_NAMES) | frozenset(mcp),
        offered_skills=offered,
        activate=activate,
        mcp=mcp,
        files=root is not None,
    )
    return policy, None, problems


async def _run(state: TaskInput, deps: NodeDeps) -> tuple[str, str, Usage]:
    """Do the task: with its tools (file tools when there is a workspace, MCP tools when
    servers are configured), else in one call."""
    op, seq = state["operation_id"], state["task"]["id"]
    task = state["task"]
    root = state.get("workspace")
    owner = state.get("owner")
    workspace = await asyncio.to_thread(open_workspace, deps, root, owner) if root else None
    files = (
        await asyncio.to_thread(named_files, workspace, task["description"], state["request"])
        if workspace
        else []
    )
    policy, skill, notes = await _policy(state, deps, root, files)
    if workspace is not None or policy.mcp_tools():
        done = await run_tool_loop(
            deps,
            _messages(state, tools=workspace is not None, files=files, skill=skill),
            workspace,
            operation_id=op,
            task=seq,
            max_steps=deps.settings.max_task_steps,
            max_tokens=deps.settings.max_task_tokens,
            # A task that only looks at files never has its reply taken as a new file.
            files=files if asks_for_changes(task["description"]) else [],
            policy=policy,
            notes=notes,
        )
        return done.text, done.model, done.usage
    reply = await deps.call_model(
        policy.alias,
        _messages(state, tools=False, skill=skill),
        effort="medium",
        node="execute_task",
        operation_id=op,
        task=seq,
    )
    return reply.text, reply.model, reply.usage


async def execute_task(state: TaskInput, deps: NodeDeps) -> dict[str, Any]:
    """Run one task: pending → in_progress → completed | failed, one event per move.

    A task that already ended (the node is re-running after a crash that hit
    before the checkpoint was written) is not run again: its stored outcome is
    returned as is.
    """
    op, task = state["operation_id"], state["task"]
    seq, key = task["id"], str(task["id"])
    logs.task_id.set(seq)  # this task's own context: its log lines name it
    async with deps.services.task_slots(op, deps.max_parallel):
        done = await deps.recorder.task_started(op, seq, task["active_form"])
        if done is not None:
            outcome: TaskOutcome = {
                "status": done.status,
                "result": done.result,
                "error": done.error,
            }
            return {"results": {key: outcome}}
        try:
            text, model, usage = await _run(state, deps)
        except asyncio.CancelledError:
            raise
        except (BudgetExceeded, NotAllowed):
            raise  # the payer's limits end the operation: another model would not help
        except Exception as exc:  # noqa: BLE001 - a task failure is reported, not raised
            error = str(exc) or type(exc).__name__
            await deps.recorder.task_failed(op, seq, error)
            return {"results": {key: {"status": "failed", "result": None, "error": error}}}
    await deps.recorder.task_completed(op, seq, result=text, model=model, usage=usage)
    return {"results": {key: {"status": "completed", "result": text, "error": None}}}
