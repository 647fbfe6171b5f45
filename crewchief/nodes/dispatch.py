"""Decide which tasks run next; fail the dependents of failed tasks."""

from __future__ import annotations

from typing import Any

from langgraph.types import Send

from crewchief.nodes.task_context import mentioned_paths, same_file
from crewchief.runtime.services import NodeDeps
from crewchief.state import OperationState, TaskInput, TaskOutcome


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


def _conflicts(paths: set[str], taken: set[str]) -> bool:
    return any(same_file(a, b) for a in paths for b in taken)


def next_tasks(state: OperationState) -> list[Send] | str:
    """Conditional edge after ``dispatch``: a ``Send`` per ready task, else synthesis.

    Ready tasks that name the same file do not run at once (two executors
    rewriting one file would lose one's change): the later one waits for the
    next round.
    """
    results = state.get("results") or {}
    done = {k for k, v in results.items() if v["status"] == "completed"}
    sends = []
    taken: set[str] = set()
    for task in state.get("plan") or []:
        if str(task["id"]) in results:
            continue
        if all(str(d) in done for d in task["depends_on"]):
            paths = mentioned_paths(task["description"])
            if _conflicts(paths, taken):
                continue
            taken |= paths
            payload: TaskInput = {
                "operation_id": state["operation_id"],
                "request": state["request"],
                "workspace": state.get("workspace"),
                "task": task,
                "dependencies": {
                    str(d): results[str(d)]["result"] or "" for d in task["depends_on"]
                },
            }
            sends.append(Send("execute_task", payload))
    return sends or "synthesize"
