"""Decide how much machinery a request deserves: the fast path or a plan."""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.types import Overwrite

from crewchief.results import TERMINAL_STATUSES
from crewchief.runtime.services import NodeDeps
from crewchief.state import OperationState


async def detect_simplicity(state: OperationState, deps: NodeDeps) -> dict[str, Any]:
    """Score the request, pick route and tier (or honour a forced route) and record them.

    Also registers the operation when the caller did not (a run started from
    LangGraph Studio), and starts a fresh operation when a thread that already
    finished one gets a new request.
    """
    request = (state.get("request") or "").strip()
    if not request:
        raise ValueError("request: expected a non-empty string")
    operation_id = state.get("operation_id")
    fresh = not operation_id or state.get("status") in TERMINAL_STATUSES
    if fresh:
        operation_id = str(uuid.uuid4())
    workspace = deps.workspace(state.get("workspace"))
    forced = state.get("forced_route")
    await deps.recorder.create_operation(
        operation_id=operation_id, request=request, workspace=workspace, route=forced
    )
    decision = await deps.decide(request, forced)
    await deps.recorder.route_decided(operation_id, decision)
    return {
        "operation_id": operation_id,
        "request": request,
        "workspace": workspace,
        "route": decision.route,
        "simplicity": {
            "score": decision.score,
            "tier": decision.tier,
            "reasons": decision.reasons,
            "forced": decision.forced,
        },
        "status": "running",
        "plan": [],
        "plan_round": 1,
        "plan_feedback": None,
        "review": None,
        "results": Overwrite({}),
        "answer": "",
        "error": None,
        "fast_path_error": None,
    }
