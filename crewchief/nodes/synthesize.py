"""Compose the final answer from the task results (orchestrator, medium effort)."""

from __future__ import annotations

from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from crewchief import prompts
from crewchief.runtime.deps import NodeDeps
from crewchief.state import OperationState


def _results_text(state: OperationState) -> tuple[str, list[str]]:
    results = state.get("results") or {}
    blocks, failures = [], []
    for task in state.get("plan") or []:
        outcome = results.get(str(task["id"])) or {
            "status": "pending",
            "result": None,
            "error": None,
        }
        body = (
            outcome["result"] if outcome["status"] == "completed" else f"FAILED: {outcome['error']}"
        )
        if outcome["status"] != "completed":
            failures.append(f"task {task['id']} ({task['description']}): {outcome['error']}")
        blocks.append(
            f"{prompts.RESULT_MARKER} {task['id']} — {task['description']} [{outcome['status']}]:\n{body}"
        )
    return "\n\n".join(blocks), failures


async def synthesize(state: OperationState, deps: NodeDeps) -> dict[str, Any]:
    """Write the answer and end the operation: completed, or failed if any task failed."""
    op = state["operation_id"]
    results, failures = _results_text(state)
    user = prompts.SYNTHESIZE_USER.format(
        request_marker=prompts.REQUEST_MARKER, request=state["request"], results=results
    )
    reply = await deps.call_model(
        "orchestrator",
        [SystemMessage(prompts.SYNTHESIZE_SYSTEM), HumanMessage(user)],
        effort="medium",
        node="synthesize",
        operation_id=op,
    )
    total = len(state.get("plan") or [])
    error = (
        f"{len(failures)} of {total} tasks did not complete: " + "; ".join(failures)
        if failures
        else None
    )
    status = "failed" if failures else "completed"
    await deps.recorder.finish(op, status, answer=reply.text, error=error)
    return {"answer": reply.text, "status": status, "error": error}
