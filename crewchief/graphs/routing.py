"""Conditional edges of the operation graph."""

from __future__ import annotations

from typing import Literal

from crewchief.nodes.dispatch import next_tasks
from crewchief.state import OperationState

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
