"""Conditional edges of the operation graph."""

from __future__ import annotations

from typing import Literal

from langgraph.types import Send

from crewchief.nodes.task_context import mentioned_paths, same_file
from crewchief.state import OperationState, TaskInput

__all__ = ["after_detect", "after_fast_path", "after_review", "next_tasks"]


def after_detect(state: OperationState) -> Literal["fast_path", "plan"]:
    return "fast_path" if state["route"] == "fast" else "plan"


def after_fast_path(state: OperationState) -> Literal["plan", "__end__"]:
    return "__end__" if state.get("status") == "completed" else "plan"


def after_review(state: OperationState) -> Literal["dispatch", "plan", "__end__"]:
    """Run the (accepted or edited) plan, plan again, or stop after a rejection."""
    review = state.get("review")
    if review == "replan":
        return "plan"
    if review == "reject":
        return "__end__"
    return "dispatch"


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
                "owner": state.get("owner"),
                "task": task,
                "dependencies": {
                    str(d): results[str(d)]["result"] or "" for d in task["depends_on"]
                },
            }
            sends.append(Send("execute_task", payload))
    return sends or "synthesize"
