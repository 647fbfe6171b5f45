"""The planner's look at the workspace: orchestrator → meta-tools → delegate answers."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage, ToolMessage

from crewchief import prompts
from crewchief.config import TierConfig
from crewchief.models.types import Usage
from crewchief.nodes._search import open_workspace
from crewchief.nodes._window import fit_to_window
from crewchief.runtime.deps import NodeDeps
from crewchief.tools.files import summarize_args
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
    root: str,
    *,
    operation_id: str,
    tier: TierConfig,
    plan_round: int = 1,
    owner: str | None = None,
) -> Exploration:
    """Offer the meta-tools until the orchestrator answers without one or the budget is spent
    (``owner``: whose code index ``search_codebase`` uses)."""
    result = Exploration(plan_round=plan_round)
    try:
        workspace = await asyncio.to_thread(open_workspace, deps, root, owner)
    except ToolError:
        return result  # the plan request that follows says what the workspace is
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
            tools=META_TOOLS,
        )
        result.usage = result.usage + reply.usage
        for name, args in reply.refused:
            await _record(deps, operation_id, result, name, args, None, refused=True)
        if not reply.message.tool_calls:
            break
        messages.append(reply.message)
        for call in reply.message.tool_calls:
            if result.calls >= limit:
                body = "Not run: the planner's tool calls are used up. Write the plan now."
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


async def _record(
    deps: NodeDeps,
    op: str,
    result: Exploration,
    name: str,
    args: dict,
    answer: MetaAnswer | None,
    *,
    refused: bool = False,
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
                else f"refused: {name!r} is not one of {', '.join(META_TOOL_NAMES)}"
            ),
            "model": answer.model if answer else None,
            "usage": {"input": u.input, "output": u.output, "reasoning": u.reasoning},
            "tool_calls": answer.tool_calls if answer else 0,
        },
        plan_round=result.plan_round,
    )
