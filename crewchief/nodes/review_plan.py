"""Wait for a reviewer's decision on the plan (when the operation asked for approval)."""

from __future__ import annotations

import asyncio
from typing import Any

from langgraph.types import interrupt

from crewchief.runtime.deps import NodeDeps
from crewchief.state import OperationState
from crewchief.steering import EditPlan, RejectPlan, ReplanPlan, edited_tasks, parse_decision


async def review_plan(state: OperationState, deps: NodeDeps) -> dict[str, Any]:
    """Interrupt with the plan; go on as the reviewer decides.

    Without ``approve_plan`` the plan is accepted as is. Otherwise the
    operation is ``awaiting_approval`` until the graph is resumed with a
    decision (``Command(resume={"action": ...})``, see
    :mod:`crewchief.steering`): ``accept`` runs the plan, ``edit`` runs the
    given task list instead, ``replan`` sends the feedback back to the planner
    (which then waits for review again) and ``reject`` ends the operation
    ``rejected``.

    Raises:
        InvalidDecision: the resume value is not a valid decision.
    """
    if not state.get("approve_plan"):
        return {"review": "accept"}
    op = state["operation_id"]
    plan_round = state.get("plan_round") or 1
    plan, text = state.get("plan") or [], state.get("plan_text") or ""
    await deps.recorder.awaiting_approval(op, plan_round=plan_round, tasks=plan, text=text)
    raw = interrupt(
        {
            "operation_id": op,
            "round": plan_round,
            "plan": plan,
            "plan_text": text,
            "actions": ["accept", "edit", "replan", "reject"],
        }
    )
    decision = parse_decision(raw)
    update: dict[str, Any] = {"review": decision.action}
    tasks = None
    if isinstance(decision, EditPlan):
        from crewchief.state import plan_text

        skills = await asyncio.to_thread(deps.skills)
        known = {m.name for m in skills.usable(workspace=bool(state.get("workspace")))}
        tasks = edited_tasks(decision, skills=known, max_tasks=deps.settings.max_plan_tasks)
        text = plan_text(tasks, "Plan edited by the reviewer.")
        update |= {"plan": tasks, "plan_text": text}
    feedback = decision.feedback if isinstance(decision, ReplanPlan) else None
    await deps.recorder.plan_reviewed(
        op, plan_round=plan_round, action=decision.action, tasks=tasks, text=text, feedback=feedback
    )
    if isinstance(decision, ReplanPlan):
        update |= {"plan_round": plan_round + 1, "plan_feedback": feedback}
    elif isinstance(decision, RejectPlan):
        reason = f"plan rejected: {decision.reason}" if decision.reason else "plan rejected"
        await deps.recorder.finish(op, "rejected", error=reason)
        update |= {"status": "rejected", "error": reason}
    return update
