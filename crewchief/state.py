"""The operation graph's state, run context and the shapes that flow through it.

A leaf: graphs, nodes, steering, the runtime and the facade all import these
shapes, and this module imports nothing of crewchief's.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, NotRequired

from pydantic import BaseModel, ConfigDict, Field

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


class RouteDecision(TypedDict):
    """How the request is routed: the simplicity detector's decision, or a forced route."""

    route: Route
    score: float
    tier: str
    reasons: list[str]
    forced: bool


class OperationInput(TypedDict):
    """What a caller passes in. Only ``request`` is required.

    A caller that registered the operation itself (the facade: it validates,
    routes and records the operation in one transaction) passes ``operation_id``
    and the ``decision`` it made; ``detect_simplicity`` then records nothing and
    decides nothing. Without a ``decision`` (LangGraph Studio, a parent graph)
    that node registers the operation and routes the request.
    """

    request: str
    operation_id: NotRequired[str]
    workspace: NotRequired[str | None]
    forced_route: NotRequired[Route | None]
    approve_plan: NotRequired[bool]
    decision: NotRequired[RouteDecision | None]
    # The API key owner it runs for: whose code index and history the run may use.
    owner: NotRequired[str | None]


class OperationState(TypedDict, total=False):
    operation_id: str
    request: str
    workspace: str | None
    owner: str | None
    forced_route: Route | None
    decision: RouteDecision | None
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
    owner: NotRequired[str | None]


class OperationContext(BaseModel):
    """Per-run settings. In LangGraph Studio these are the fields of the run's context."""

    model_config = ConfigDict(extra="forbid")

    workspace: str | None = Field(
        None,
        description=(
            "Directory the operation works in (file tools are confined to it), for runs"
            " whose input names none."
        ),
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

    def model_overrides(self) -> dict[str, str]:
        pairs = {
            "orchestrator": self.orchestrator_model,
            "delegate": self.delegate_model,
            "fast": self.fast_model,
        }
        return {alias: spec for alias, spec in pairs.items() if spec}


_DOUBLE_FINAL = {
    "run",
    "set",
    "get",
    "put",
    "stop",
    "plan",
    "ship",
    "split",
    "cut",
    "map",
    "drop",
    "wrap",
    "tag",
}


def gerund(description: str) -> str:
    """'Run the build' → 'Running the build' (a best effort for the first verb)."""
    first, _, rest = description.strip().partition(" ")
    word = first.lower()
    if not word.isalpha():
        return f"Working on: {description.strip()}"
    if word in _DOUBLE_FINAL:
        ing = word + word[-1] + "ing"
    elif word.endswith("ie"):
        ing = word[:-2] + "ying"
    elif word.endswith("e") and not word.endswith(("ee", "ye", "oe")):
        ing = word[:-1] + "ing"
    else:
        ing = word + "ing"
    return (ing.capitalize() + (" " + rest if rest else "")).strip()


def plan_text(tasks: list[PlannedTask], summary: str) -> str:
    """The plan as a numbered list, as shown to people."""
    lines = [summary.strip()] if summary.strip() else []
    for task in tasks:
        extra = []
        if task["depends_on"]:
            extra.append("after " + ", ".join(str(d) for d in task["depends_on"]))
        if task.get("skill"):
            extra.append(f"skill: {task['skill']}")
        suffix = f" ({'; '.join(extra)})" if extra else ""
        lines.append(f"{task['id']}. {task['description']}{suffix}")
    return "\n".join(lines)
