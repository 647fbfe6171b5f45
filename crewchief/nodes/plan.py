"""Write the plan with the tier's model and effort (deep: orchestrator, high reasoning)."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from crewchief import prompts
from crewchief.errors import PlanError
from crewchief.models.types import Usage
from crewchief.nodes._explore import explore
from crewchief.nodes._plan_parsing import PlanParseError, parse_plan, plan_schema
from crewchief.nodes._search import warm
from crewchief.runtime.deps import NodeDeps
from crewchief.runtime.history import UNKNOWN
from crewchief.skills.registry import catalog
from crewchief.state import OperationState, plan_text


async def plan(state: OperationState, deps: NodeDeps) -> dict[str, Any]:
    """Let the planner look at the workspace, then ask for a JSON plan; repair or retry it.

    With a workspace (and ``max_plan_tool_calls`` > 0) the orchestrator is first
    offered the meta-tools, answered by the delegate model (see
    :mod:`crewchief.tools.meta`), and the tools of the MCP servers that allow the
    planner (with or without a workspace), until it replies without a tool call. Then the
    plan is asked for with structured output and the answers gathered, and a
    reply that does not parse is asked for again with the reason, up to
    ``plan_attempts`` times.

    Raises:
        PlanError: no usable plan after every attempt (the operation fails with
            the last reason; an empty plan is never accepted).
    """
    op = state["operation_id"]
    settings = deps.settings
    workspace = state.get("workspace")
    skills = await asyncio.to_thread(deps.skills)
    listing = catalog(skills, workspace=bool(workspace))
    known_skills = {m.name for m in skills.usable(workspace=bool(workspace))}
    system = prompts.PLAN_SYSTEM.format(
        max_tasks=settings.max_plan_tasks,
        skills=prompts.PLAN_SKILLS.format(catalog=listing) if listing else "",
    )
    user = prompts.PLAN_USER.format(
        request_marker=prompts.REQUEST_MARKER,
        request=state["request"],
        workspace=workspace or "(none)",
    )
    plan_round = state.get("plan_round") or 1
    if plan_round > 1 and state.get("plan_feedback"):
        user += "\n\n" + prompts.PLAN_FEEDBACK.format(
            previous=state.get("plan_text") or "(none)", feedback=state["plan_feedback"]
        )
    # The owner's profile and their similar earlier operations here, recorded when added.
    owner = state.get("owner", UNKNOWN)
    extra = await deps.planning_context(op, state["request"], workspace, owner)
    if extra.record is not None:
        user += "\n\n" + "\n\n".join(extra.blocks)
        await deps.recorder.planning_context(op, extra.record, plan_round=plan_round)
    usage = Usage()
    tier = deps.planning_tier(state)
    # The planner looks first when there is something to look at: the workspace, or the
    # tools of MCP servers that allow the planner.
    if settings.max_plan_tool_calls > 0 and (workspace or deps.mcp.planner_servers()):
        if workspace:
            warm(deps, workspace, state.get("owner"))  # indexed while the planner starts
        # Looking and planning are separate calls: the plan itself is always asked for
        # with structured output and no tools in sight (small models otherwise turn the
        # tool descriptions into tasks).
        found = await explore(
            deps,
            system,
            user,
            workspace,
            operation_id=op,
            tier=tier,
            plan_round=plan_round,
            owner=state.get("owner"),
        )
        usage = usage + found.usage
        if found.findings:
            user += "\n\n" + prompts.PLAN_FINDINGS.format(findings=found.findings)
    messages: list[BaseMessage] = [SystemMessage(system), HumanMessage(user)]
    last_error = ""
    for attempt in range(1, settings.plan_attempts + 1):
        reply = await deps.call_model(
            tier.alias,
            messages,
            effort=tier.effort,
            node="plan",
            operation_id=op,
            schema=plan_schema(known_skills),
        )
        usage = usage + reply.usage
        try:
            tasks, summary = parse_plan(
                reply.text, max_tasks=settings.max_plan_tasks, skills=known_skills
            )
        except PlanParseError as exc:
            last_error = str(exc)
            await deps.recorder.plan_invalid(op, attempt, last_error, plan_round=plan_round)
            messages += [
                AIMessage(reply.text),
                HumanMessage(prompts.PLAN_RETRY.format(error=last_error)),
            ]
            continue
        return await _done(deps, op, tasks, summary, usage, plan_round)
    raise PlanError(f"no usable plan after {settings.plan_attempts} attempt(s): {last_error}")


async def _done(
    deps: NodeDeps, op: str, tasks: list, summary: str, usage: Usage, plan_round: int
) -> dict[str, Any]:
    text = plan_text(tasks, summary)
    await deps.recorder.plan_generated(
        op, tasks=list(tasks), text=text, usage=usage, plan_round=plan_round
    )
    return {"plan": tasks, "plan_text": text, "plan_round": plan_round}
