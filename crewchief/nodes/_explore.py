"""The planner's look at the workspace: orchestrator → meta-tools → delegate answers.

MCP servers that allow the planner (``[mcp.servers.NAME] planner = true``) offer their tools
here too; those calls are run directly, without the delegate.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass, field

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage, ToolMessage

from crewchief import prompts
from crewchief.config import TierConfig
from crewchief.models.types import Usage
from crewchief.nodes._search import open_workspace
from crewchief.nodes._window import fit_to_window
from crewchief.runtime.deps import NodeDeps
from crewchief.tools.files import summarize_args
from crewchief.tools.mcp import McpTool
from crewchief.tools.meta import META_TOOL_NAMES, META_TOOLS, MetaAnswer, run_meta_tool
from crewchief.tools.workspace import ToolError

log = logging.getLogger(__name__)

_ANSWER_IN_EVENT = 300
_ANSWER_IN_FINDINGS = 1_500


@dataclass(slots=True)
class Exploration:
    """What exploring produced.

    ``findings`` are the meta-tool answers, for the plan request that follows;
    ``usage`` the orchestrator's tokens only (the delegate's are in the ledger
    under ``meta:<tool>``).
    """

    plan_round: int = 1
    findings: str = ""
    usage: Usage = field(default_factory=Usage)
    calls: int = 0


async def explore(
    deps: NodeDeps,
    system: str,
    user: str,
    root: str | None,
    *,
    operation_id: str,
    tier: TierConfig,
    plan_round: int = 1,
    owner: str | None = None,
) -> Exploration:
    """Offer the meta-tools (with a workspace) and the planner's MCP tools until the
    orchestrator answers without one or the budget is spent (``owner``: whose code index
    ``search_codebase`` uses)."""
    result = Exploration(plan_round=plan_round)
    mcp = await _planner_mcp_tools(deps, operation_id)
    workspace = None
    if root is not None:
        try:
            workspace = await asyncio.to_thread(open_workspace, deps, root, owner)
        except ToolError:
            pass  # the plan request that follows says what the workspace is
    if workspace is None and not mcp:
        return result
    tools = (META_TOOLS if workspace is not None else []) + [t.spec() for t in mcp.values()]
    limit = deps.settings.max_plan_tool_calls
    messages: list[BaseMessage] = [
        SystemMessage(system + prompts.PLAN_EXPLORE.format(max_calls=limit)),
        HumanMessage(user),
    ]
    findings: list[str] = []
    while result.calls < limit:
        note = await fit_to_window(
            deps, messages, tier.alias, node="plan", operation_id=operation_id
        )
        if note is not None:
            log.info("operation %s: planner %s", operation_id, note)
        reply = await deps.call_model(
            tier.alias,
            messages,
            effort=tier.effort,
            node="plan",
            operation_id=operation_id,
            tools=tools,
        )
        result.usage = result.usage + reply.usage
        for name, args in reply.refused:
            tool = deps.mcp.resolve(name)
            if tool is not None and tool.wire in mcp:  # named mcp:NAME/tool: accepted as is
                call_id = f"call_{uuid.uuid4().hex[:12]}"
                call = {"name": tool.wire, "args": args, "id": call_id, "type": "tool_call"}
                reply.message.tool_calls.append(call)
                continue
            name = deps.mcp.canonical(name)
            await _record(deps, operation_id, result, name, args, None, refused=True)
        if not reply.message.tool_calls:
            break
        messages.append(reply.message)
        for call in reply.message.tool_calls:
            tool = mcp.get(call["name"])
            if result.calls >= limit:
                body = "Not run: the planner's tool calls are used up. Write the plan now."
            elif tool is not None or workspace is None:
                body = await _call_mcp(deps, operation_id, result, tool, call, findings)
            else:
                answer = await run_meta_tool(
                    deps,
                    workspace,
                    call["name"],
                    call["args"],
                    operation_id=operation_id,
                    max_steps=deps.settings.meta_tool_steps,
                )
                await _record(deps, operation_id, result, call["name"], call["args"], answer)
                body = answer.answer if answer.ok else f"error: {answer.answer}"
                if answer.ok:
                    shown = summarize_args(call["args"])
                    findings.append(f"- {call['name']} {shown}:\n{body[:_ANSWER_IN_FINDINGS]}")
            messages.append(ToolMessage(body, tool_call_id=call["id"], name=call["name"]))
    result.findings = "\n".join(findings)
    return result


async def _planner_mcp_tools(deps: NodeDeps, op: str) -> dict[str, McpTool]:
    """The tools of the MCP servers that allow the planner, by wire name."""
    servers = deps.mcp.planner_servers()
    if not servers or deps.settings.max_plan_tool_calls <= 0:
        return {}
    tools, problems = await deps.mcp.tools(servers)
    for problem in problems:
        log.warning("operation %s: planner: %s", op, problem)
    return {t.wire: t for t in tools}


async def _call_mcp(
    deps: NodeDeps,
    op: str,
    result: Exploration,
    tool: McpTool | None,
    call: dict,
    findings: list[str],
) -> str:
    """Run one MCP tool call of the planner and record it as a ``plan.tool_called`` event."""
    if tool is None:  # only reachable when the reply names a tool that was not offered
        await _record(deps, op, result, call["name"], call["args"], None, refused=True)
        return f"error: {call['name']} is not an offered tool"
    done = await deps.mcp.call(tool, call["args"] if isinstance(call["args"], dict) else {})
    answer = MetaAnswer(done.ok, done.output)
    extra = {"server": done.server, "duration_ms": done.duration_ms,
             "truncated": done.truncated, "restarted": done.restarted, "error": done.error}  # fmt: skip
    await _record(deps, op, result, tool.name, call["args"], answer, extra=extra)
    if not done.ok:
        return f"error: {done.output}"
    shown = summarize_args(call["args"]) if isinstance(call["args"], dict) else ""
    findings.append(f"- {tool.name} {shown}:\n{done.output[:_ANSWER_IN_FINDINGS]}")
    return done.output


async def _record(
    deps: NodeDeps,
    op: str,
    result: Exploration,
    name: str,
    args: dict,
    answer: MetaAnswer | None,
    *,
    refused: bool = False,
    extra: dict | None = None,
) -> None:
    result.calls += 1
    if refused:
        log.warning("operation %s: planner called %r, which is not a meta-tool", op, name)
    u = answer.usage if answer else Usage()
    await deps.recorder.plan_tool_called(
        op,
        result.calls,
        {
            "tool": name,
            "args": summarize_args(args) if isinstance(args, dict) else str(args)[:120],
            "ok": bool(answer and answer.ok),
            "refused": refused,
            "answer": (
                answer.answer[:_ANSWER_IN_EVENT]
                if answer
                else f"refused: {name!r} is not one of the planner's tools"
                f" ({', '.join(META_TOOL_NAMES)}, or an MCP server's)"
            ),
            "model": (answer.model or None) if answer else None,
            "usage": {"input": u.input, "output": u.output, "reasoning": u.reasoning},
            "tool_calls": answer.tool_calls if answer else 0,
        }
        | (extra or {}),
        plan_round=result.plan_round,
    )
