"""The operation graph's state, run context and the shapes that flow through it."""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

# typing_extensions: LangGraph's schema export needs it for TypedDict on Python < 3.12.
from typing_extensions import TypedDict

Route = Literal["fast", "plan"]
TaskStatus = Literal["pending", "in_progress", "completed", "failed", "cancelled"]


class PlannedTask(TypedDict):
    id: int
    description: str
    active_form: str
    skill: str | None
    depends_on: list[int]
    # Set when the task is re-run: guidance for this run, and which version it is.
    instructions: NotRequired[str | None]
    version: NotRequired[int]


class TaskOutcome(TypedDict):
    status: TaskStatus
    result: str | None
    error: str | None


def merge_outcomes(
    left: dict[int, TaskOutcome] | None, right: dict[int, TaskOutcome] | None
) -> dict[int, TaskOutcome]:
    """Reducer for ``results``: parallel executors each add their own task's outcome."""
    merged = dict(left or {})
    merged.update(right or {})
    return merged


class OperationInput(TypedDict):
    """What a caller passes in. Only ``request`` is required."""

    request: str
    operation_id: NotRequired[str]
    workspace: NotRequired[str | None]
    forced_route: NotRequired[Route | None]
    approve_plan: NotRequired[bool]


class OperationState(TypedDict, total=False):
    operation_id: str
    request: str
    workspace: str | None
    forced_route: Route | None
    route: Route
    simplicity: dict[str, Any]
    fast_path_error: str | None
    plan: list[PlannedTask]
    plan_text: str
    # Plan approval: wait for a reviewer after planning; rounds count replans.
    approve_plan: bool
    plan_round: int
    plan_feedback: str | None
    review: str | None
    results: Annotated[dict[int, TaskOutcome], merge_outcomes]
    answer: str
    status: str
    error: str | None


class OperationOutput(TypedDict, total=False):
    operation_id: str
    route: Route
    plan: list[PlannedTask]
    results: dict[int, TaskOutcome]
    answer: str
    status: str
    error: str | None


class TaskInput(TypedDict):
    """What ``dispatch`` sends to one ``execute_task``."""

    operation_id: str
    request: str
    workspace: str | None
    task: PlannedTask
    dependencies: dict[str, str]


class OperationContext(BaseModel):
    """Per-run settings. In LangGraph Studio these are the fields of the run's context."""

    model_config = ConfigDict(extra="forbid")

    workspace: str | None = Field(
        None, description="Directory the operation works in (file tools are confined to it)."
    )
    simplicity_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Score at or above which a request takes the fast path (default 0.7).",
    )
    max_parallel_tasks: int | None = Field(
        None, ge=1, le=64, description="How many tasks may run at once (default 4)."
    )
    orchestrator_model: str | None = Field(
        None, description="Override the orchestrator alias for this run, as 'provider:model'."
    )
    delegate_model: str | None = Field(
        None, description="Override the delegate alias for this run, as 'provider:model'."
    )
    fast_model: str | None = Field(
        None, description="Override the fast alias for this run, as 'provider:model'."
    )
    persist: bool = Field(
        True, description="Record the operation, tasks and events in the app database."
    )

    # Set by the in-process runner; Studio runs build their own on first use.
    _services: Any = PrivateAttr(default=None)
    # Set by the runner when it routed the request before the run (to pick the run's
    # durability): ``(request, forced_route, Decision)``, reused by detect_simplicity.
    _decision: Any = PrivateAttr(default=None)

    def model_overrides(self) -> dict[str, str]:
        pairs = {
            "orchestrator": self.orchestrator_model,
            "delegate": self.delegate_model,
            "fast": self.fast_model,
        }
        return {alias: spec for alias, spec in pairs.items() if spec}
