"""Write the plan with the orchestrator model at high reasoning effort."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage

from crewchief import prompts
from crewchief.errors import PlanError
from crewchief.graphs.state import OperationState
from crewchief.models.registry import Usage
from crewchief.nodes._plan_parsing import PLAN_SCHEMA, PlanParseError, parse_plan, plan_text
from crewchief.services import NodeDeps


async def plan(state: OperationState, deps: NodeDeps) -> dict[str, Any]:
    """Ask for a JSON plan; repair it, or ask again with the reason, up to ``plan_attempts``.

    Raises:
        PlanError: no usable plan after every attempt (the operation fails with
            the last reason; an empty plan is never accepted).
    """
    op = state["operation_id"]
    settings = deps.settings
    messages: list[BaseMessage] = [
        SystemMessage(prompts.PLAN_SYSTEM.format(max_tasks=settings.max_plan_tasks)),
        HumanMessage(
            prompts.PLAN_USER.format(
                request_marker=prompts.REQUEST_MARKER,
                request=state["request"],
                workspace=state.get("workspace") or "(none)",
            )
        ),
    ]
    usage = Usage()
    last_error = ""
    for attempt in range(1, settings.plan_attempts + 1):
        reply = await deps.call_model(
            "orchestrator",
            messages,
            effort="high",
            node="plan",
            operation_id=op,
            schema=PLAN_SCHEMA,
        )
        usage = usage + reply.usage
        try:
            tasks, summary = parse_plan(reply.text, max_tasks=settings.max_plan_tasks)
        except PlanParseError as exc:
            last_error = str(exc)
            await deps.recorder.plan_invalid(op, attempt, last_error)
            messages += [
                AIMessage(reply.text),
                HumanMessage(prompts.PLAN_RETRY.format(error=last_error)),
            ]
            continue
        text = plan_text(tasks, summary)
        await deps.recorder.plan_generated(op, tasks=list(tasks), text=text, usage=usage)
        return {"plan": tasks, "plan_text": text}
    raise PlanError(f"no usable plan after {settings.plan_attempts} attempt(s): {last_error}")
