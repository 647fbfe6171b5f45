"""Steering a running operation: a reviewer's plan decision, a task re-run.

These shapes are shared by the REST API (request bodies, so a bad one gets a
422 with field paths), the plan-review node (the value a LangGraph interrupt is
resumed with, also from Studio) and the library.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from crewchief.errors import InvalidRequest
from crewchief.state import PlannedTask

MAX_TEXT = 20_000


class InvalidDecision(InvalidRequest):
    """A plan decision is invalid; ``details`` names the fields."""


class PlanTaskEdit(BaseModel):
    """One task of an edited plan. Its id is its position (1, 2, ...)."""

    model_config = ConfigDict(extra="forbid")

    description: str = Field(
        ...,
        min_length=1,
        max_length=MAX_TEXT,
        pattern=r"\S",
        description="What to do (not only whitespace).",
    )
    active_form: str | None = Field(
        None, max_length=MAX_TEXT, description="Shown while it runs; derived when omitted."
    )
    skill: str | None = Field(None, max_length=64, description="A registered skill, or null.")
    # Strict: a task id is a JSON integer, not "2" or 2.0.
    depends_on: list[Annotated[int, Field(ge=1, strict=True)]] = Field(
        default_factory=list, max_length=100, description="Ids of earlier tasks it needs."
    )


class AcceptPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["accept"]


class EditPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["edit"]
    tasks: list[PlanTaskEdit] = Field(..., min_length=1, description="The new task list.")


class ReplanPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["replan"]
    feedback: str = Field(
        ..., min_length=1, max_length=MAX_TEXT, description="What the planner should change."
    )


class RejectPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["reject"]
    reason: str | None = Field(None, max_length=MAX_TEXT)


PlanDecision = Annotated[
    AcceptPlan | EditPlan | ReplanPlan | RejectPlan, Field(discriminator="action")
]
_DECISION = TypeAdapter(PlanDecision)


class TaskRerun(BaseModel):
    """Re-run a task (and every task that depends on it), optionally changed."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = Field(
        None, min_length=1, max_length=MAX_TEXT, description="A new description for the task."
    )
    instructions: str | None = Field(
        None, min_length=1, max_length=MAX_TEXT, description="Extra guidance for this run."
    )


def parse_decision(raw: Any) -> AcceptPlan | EditPlan | ReplanPlan | RejectPlan:
    """Validate a decision given as plain data (an interrupt's resume value).

    Raises:
        InvalidDecision: naming each bad field.
    """
    from pydantic import ValidationError

    if isinstance(raw, AcceptPlan | EditPlan | ReplanPlan | RejectPlan):
        return raw
    try:
        return _DECISION.validate_python(raw)
    except ValidationError as exc:
        # A missing or unknown action has no location: it is the action's fault.
        details = [
            {"path": ".".join(str(p) for p in e["loc"]) or "action", "message": e["msg"]}
            for e in exc.errors()
        ]
        first = details[0] if details else {"path": "action", "message": "invalid"}
        raise InvalidDecision(f"{first['path']}: {first['message']}", details) from None


def edited_tasks(edit: EditPlan, *, skills: set[str], max_tasks: int) -> list[PlannedTask]:
    """The planned tasks of an edit, checked: size, earlier-only dependencies, known skills.

    Raises:
        InvalidDecision: with the path of the offending field (``tasks.2.depends_on``).
    """
    from crewchief.state import gerund

    if len(edit.tasks) > max_tasks:
        raise InvalidDecision(
            f"tasks: at most {max_tasks} tasks are allowed, got {len(edit.tasks)}",
            [{"path": "tasks", "message": f"at most {max_tasks} tasks"}],
        )
    out: list[PlannedTask] = []
    for i, t in enumerate(edit.tasks, start=1):
        later = [d for d in t.depends_on if d >= i]
        if later:
            path = f"tasks.{i - 1}.depends_on"
            msg = f"task {i} may depend only on earlier tasks (1..{i - 1}), got {later}"
            raise InvalidDecision(f"{path}: {msg}", [{"path": path, "message": msg}])
        if t.skill is not None and t.skill not in skills:
            path = f"tasks.{i - 1}.skill"
            msg = f"unknown skill {t.skill!r}; expected one of {sorted(skills)} or null"
            raise InvalidDecision(f"{path}: {msg}", [{"path": path, "message": msg}])
        description = t.description.strip()
        out.append(
            {
                "id": i,
                "description": description,
                "active_form": (t.active_form or "").strip() or gerund(description),
                "skill": t.skill,
                "depends_on": sorted(set(t.depends_on)),
            }
        )
    return out


def dependents(plan: list[PlannedTask], sequence: int) -> list[int]:
    """Every task that depends on ``sequence``, directly or through others, in plan order."""
    hit = {sequence}
    changed = True
    while changed:
        changed = False
        for task in plan:
            if task["id"] not in hit and hit & set(task["depends_on"]):
                hit.add(task["id"])
                changed = True
    return [t["id"] for t in plan if t["id"] in hit and t["id"] != sequence]
