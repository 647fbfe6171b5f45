"""Fail the dependents of failed tasks (which tasks run next is the edge after this node)."""

from __future__ import annotations

from typing import Any

from crewchief.runtime.deps import NodeDeps
from crewchief.state import OperationState, TaskOutcome


async def dispatch(state: OperationState, deps: NodeDeps) -> dict[str, Any]:
    """Mark tasks whose dependencies failed as failed (transitively), with an event each."""
    results = dict(state.get("results") or {})
    updates: dict[str, TaskOutcome] = {}
    changed = True
    while changed:
        changed = False
        for task in state.get("plan") or []:
            key = str(task["id"])
            if key in results:
                continue
            broken = [
                d
                for d in task["depends_on"]
                if results.get(str(d), {}).get("status") in ("failed", "cancelled")
            ]
            if broken:
                error = f"not run: it depends on task {broken[0]}, which did not complete"
                await deps.recorder.task_failed(state["operation_id"], task["id"], error)
                results[key] = updates[key] = {"status": "failed", "result": None, "error": error}
                changed = True
    return {"results": updates} if updates else {}
