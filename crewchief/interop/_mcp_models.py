"""What the MCP tools return (their output schemas), and the messages that say what to call
next. The operation itself is :class:`crewchief.results.OperationResult`, the shape
``GET /v1/operations/{id}`` returns."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from crewchief.results import OperationResult

PLAN_URI = "crewchief://operations/{operation_id}/plan"
EVENTS_URI = "crewchief://operations/{operation_id}/events"

# What an agent should do next, by the operation's status.
_NEXT = {
    "running": "call wait_for_operation to follow it (progress is reported as it runs),"
    " or cancel_operation to stop it",
    "awaiting_approval": "read its plan (get_operation or the plan resource), then call"
    " review_plan with action accept, edit, replan or reject",
    "completed": "done: the answer is in `answer` (get_operation); rerun_task re-runs a task"
    " with new instructions",
    "failed": "it failed: see `error` and each task's `error` (get_operation); rerun_task"
    " re-runs a task",
    "cancelled": "it was cancelled; start_operation starts a new one",
    "rejected": "its plan was rejected; start_operation starts a new one",
}


def next_step(status: str) -> str:
    """What to call next for an operation with this status, in words for an agent."""
    return _NEXT.get(status, "call get_operation to see it")


def resources(operation_id: str) -> dict[str, str]:
    """The URIs of an operation's plan and events resources."""
    return {
        "plan_resource": PLAN_URI.format(operation_id=operation_id),
        "events_resource": EVENTS_URI.format(operation_id=operation_id),
    }


class Accepted(BaseModel):
    """An operation that was started (or continued) and runs in the background."""

    id: str = Field(description="The operation's id: pass it to the other tools.")
    status: str = Field(description="`running`, or `rejected` for a rejected plan.")
    next: str = Field(description="What to call next.")
    plan_resource: str = Field(description="URI of the operation's plan (resources/read).")
    events_resource: str = Field(description="URI of the operation's stored events.")


class Rerun(Accepted):
    """A task re-run: the task's new version and the tasks re-run with it."""

    task: int = Field(description="The task re-run.")
    version: int = Field(description="Its new version.")
    dependents: list[int] = Field(description="Tasks re-run because they depend on it.")


class Waited(BaseModel):
    """How a wait ended, and the operation as it stands."""

    id: str
    status: str = Field(description="The operation's status now.")
    reason: Literal["ended", "awaiting_approval", "timeout"] = Field(
        description="`ended`: it completed, failed, was cancelled or rejected;"
        " `awaiting_approval`: its plan waits for review_plan; `timeout`: still running when"
        " `timeout_seconds` passed (call wait_for_operation again)."
    )
    waited_seconds: float
    next: str = Field(description="What to call next.")
    operation: OperationResult = Field(description="The operation, as get_operation returns it.")


class SkillInfo(BaseModel):
    name: str
    description: str
    model: str = Field(description="The alias it prefers: `orchestrator`, `delegate` or `either`.")
    tools: str = Field(description="The tools it may use, in words.")
    requires_context: list[str] = Field(
        description="Context it needs, e.g. `workspace` (an operation without a workspace"
        " cannot use it)."
    )
    source: str = Field(description="`builtin` or `user`.")


class Skills(BaseModel):
    skills: list[SkillInfo]


def accepted(operation_id: str, status: str = "running", **extra: Any) -> dict[str, Any]:
    """The fields of :class:`Accepted` for an operation."""
    return {
        "id": operation_id,
        "status": status,
        "next": next_step(status),
        **resources(operation_id),
        **extra,
    }
