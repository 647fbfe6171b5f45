"""Decide how much machinery a request deserves: the fast path or a plan."""

from __future__ import annotations

import uuid
from typing import Any

from langgraph.types import Overwrite

from crewchief.results import TERMINAL_STATUSES
from crewchief.runtime.deps import NodeDeps
from crewchief.state import OperationState, RouteDecision


async def detect_simplicity(state: OperationState, deps: NodeDeps) -> dict[str, Any]:
    """Route the request (score, route, tier, reasons, or a forced route) and start the run.

    A run whose input carries its ``decision`` was registered and routed by its
    caller (the facade validated the request and stored operation and route in one
    transaction): nothing is recorded or decided again here. Otherwise (a run from
    LangGraph Studio or a parent graph) this node registers the operation and routes
    the request; a thread that already finished one operation starts a fresh one.
    The workspace is settled here too: the input's, else the context's default.
    """
    request = state.get("request") or ""
    operation_id = state.get("operation_id")
    forced = state.get("forced_route")
    decision: RouteDecision | None = state.get("decision")
    fresh = not operation_id or state.get("status") in TERMINAL_STATUSES
    if fresh:
        operation_id, decision = str(uuid.uuid4()), None
    workspace = state.get("workspace") or deps.context.workspace
    if decision is None:
        # Nobody checked this input yet (the facade's runs arrive checked and decided).
        request = request.strip()
        if not request:
            raise ValueError("request: expected a non-empty string")
        await deps.recorder.create_operation(
            operation_id=operation_id, request=request, workspace=workspace, route=forced
        )
        decision = (await deps.detector()).decide(request, force=forced).as_route()
        await deps.recorder.route_decided(operation_id, decision)
    return {
        "operation_id": operation_id,
        "request": request,
        "workspace": workspace,
        "decision": decision,
        "route": decision["route"],
        "simplicity": {
            "score": decision["score"],
            "tier": decision["tier"],
            "reasons": decision["reasons"],
            "forced": decision["forced"],
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
