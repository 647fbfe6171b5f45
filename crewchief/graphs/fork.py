"""Forking an operation's thread to re-run a task: find the checkpoint before it, rewrite the plan.

A re-run continues the graph from the newest checkpoint, on the operation's
lineage, whose results do not include the task yet, as if ``dispatch`` had just
run with the changed plan: the task and its dependents run again, the other
tasks keep their results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crewchief.errors import OperationStateError, TaskNotFound
from crewchief.state import PlannedTask, gerund
from crewchief.steering import dependents


@dataclass(frozen=True, slots=True)
class Fork:
    """Where a re-run of ``sequence`` starts, and which tasks it runs again."""

    sequence: int
    latest: Any  # the thread's newest StateSnapshot
    base: Any  # the snapshot just before the task ran
    dependents: list[int]


async def plan_fork(graph: Any, operation_id: str, sequence: int) -> Fork:
    """The fork point of a re-run of ``sequence``, checked.

    Raises:
        TaskNotFound: the plan has no such task.
        OperationStateError: no checkpoints, or a dependency of the task did not complete.
    """
    latest, base = await fork_point(graph, operation_id, sequence)
    return Fork(sequence, latest, base, dependents(latest.values["plan"], sequence))


async def apply_fork(
    graph: Any,
    fork: Fork,
    *,
    description: str | None,
    instructions: str | None,
    versions: dict[int, int],
    ended_as: str,
) -> None:
    """Write the fork: the changed plan and the results that stay, as if ``dispatch`` just ran.

    Only the re-run task and its dependents run; see :func:`fork_values`.
    """
    values = fork_values(
        fork.latest,
        fork.sequence,
        description=description,
        instructions=instructions,
        versions=versions,
        ended_as=ended_as,
    )
    await graph.aupdate_state(fork.base.config, values, as_node="dispatch")


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
    ended_as: str,
) -> dict[str, Any]:
    """The state update for the fork: the changed plan, and the results that stay.

    ``ended_as`` is how the operation ended (``completed``, ``failed``, ``cancelled``).
    """
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
    # A task the re-run does not announce runs only if it is announced: one that never
    # ended (the operation was cancelled or failed first) keeps the outcome it was
    # recorded with, as the operation's end left it.
    for task in plan:
        key = str(task["id"])
        if task["id"] not in rerun and key not in kept:
            kept[key] = {
                "status": "cancelled" if ended_as == "cancelled" else "failed",
                "result": None,
                "error": f"operation {ended_as}",
            }
    return {
        "plan": plan,
        "results": kept,
        "status": "running",
        "answer": "",
        "error": None,
    }
