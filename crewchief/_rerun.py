"""Re-run a task of a finished operation: a fork of its graph from before the task ran."""

from __future__ import annotations

from typing import Any

from crewchief.errors import OperationStateError, TaskNotFound
from crewchief.graphs.state import PlannedTask
from crewchief.nodes._plan_parsing import gerund
from crewchief.steering import dependents


async def fork_point(graph: Any, operation_id: str, sequence: int) -> tuple[Any, Any]:
    """The latest state and the checkpoint just before ``sequence`` ran, on its lineage.

    Walks back from the latest checkpoint through each one's parent to the newest
    checkpoint whose results do not include the task yet.

    Raises:
        TaskNotFound: the plan has no such task.
        OperationStateError: no checkpoints, or a dependency of the task did not complete.
    """
    config = {"configurable": {"thread_id": operation_id}}
    latest = await graph.aget_state(config)
    plan: list[PlannedTask] = latest.values.get("plan") or []
    if not latest.values:
        raise OperationStateError(f"operation {operation_id} has no checkpoint to fork from")
    if not any(t["id"] == sequence for t in plan):
        raise TaskNotFound(f"operation {operation_id} has no task {sequence}")
    results = latest.values.get("results") or {}
    task = next(t for t in plan if t["id"] == sequence)
    broken = [d for d in task["depends_on"] if results.get(str(d), {}).get("status") != "completed"]
    if broken:
        raise OperationStateError(
            f"task {sequence} depends on task {broken[0]}, which did not complete: re-run that one"
        )
    snapshot = latest
    while snapshot is not None:
        values = snapshot.values or {}
        if values.get("plan") and str(sequence) not in (values.get("results") or {}):
            return latest, snapshot
        parent = snapshot.parent_config
        snapshot = await graph.aget_state(parent) if parent else None
    raise OperationStateError(f"no checkpoint of operation {operation_id} precedes task {sequence}")


def fork_values(
    latest: Any,
    sequence: int,
    *,
    description: str | None,
    instructions: str | None,
    versions: dict[int, int],
) -> dict[str, Any]:
    """The state update for the fork: the changed plan, and the results that stay."""
    plan: list[PlannedTask] = [dict(t) for t in latest.values["plan"]]  # type: ignore[misc]
    for task in plan:
        if task["id"] in versions:
            task["version"] = versions[task["id"]]
        if task["id"] == sequence:
            if description:
                task["description"] = description
                task["active_form"] = gerund(description)
            if instructions is not None:
                task["instructions"] = instructions
    rerun = {sequence, *dependents(plan, sequence)}
    kept = {k: v for k, v in (latest.values.get("results") or {}).items() if int(k) not in rerun}
    return {
        "plan": plan,
        "results": kept,
        "status": "running",
        "answer": "",
        "error": None,
    }
