"""Request and response bodies of the REST API (`OperationCreate`, `OperationPublic`, ...)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from crewchief.client.validate import MAX_REQUEST_CHARS, non_finite_number
from crewchief.results import OperationResult, OperationSummary

Status = Literal["running", "awaiting_approval", "completed", "failed", "cancelled", "rejected"]
Alias = Literal["orchestrator", "delegate", "fast"]


class OperationCreate(BaseModel):
    """Start an operation."""

    model_config = ConfigDict(extra="forbid")

    request: str = Field(
        ...,
        min_length=1,
        max_length=MAX_REQUEST_CHARS,
        pattern=r"\S",
        description="What to do, in plain words (not only whitespace).",
        examples=["Add a docstring to every function in utils.py"],
    )
    workspace: str | None = Field(
        None,
        max_length=4096,
        description="Directory the operation works in; must lie under one of the server's "
        "`api.workspace_roots`. Null: no file access.",
    )
    route: Literal["fast", "plan"] | None = Field(
        None, description="Force the route instead of letting the simplicity detector decide."
    )
    approve_plan: bool = Field(
        False,
        strict=True,  # a JSON boolean: "yes", 1 or "true" are refused, not read as true
        description="Stop after planning (status `awaiting_approval`) until "
        "`POST /v1/operations/{id}/plan` decides.",
    )
    models: dict[Alias, str] | None = Field(
        None,
        description='Rebind model aliases for this operation: `{"delegate": "openai:gpt-4.1-mini"}`.'
        " Only specs the server allows.",
    )
    metadata: dict[str, Any] | None = Field(
        None,
        description="Your own data, stored and returned as is (at most 16 kB as JSON; "
        "no NaN or Infinity, which JSON does not have).",
    )

    @field_validator("metadata")
    @classmethod
    def _finite_numbers_only(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        where = non_finite_number(value)
        if where is not None:
            # The JSON parser takes NaN and Infinity; stored as JSON they would turn into null.
            raise PydanticCustomError(
                "non_finite_number",
                "must not contain NaN or Infinity (found at {where}): JSON has no such numbers",
                {"where": f"metadata{where}"},
            )
        return value


class Links(BaseModel):
    self: str
    events: str
    cancel: str
    plan: str


class OperationAccepted(BaseModel):
    """The operation was accepted and runs in the background."""

    id: str
    status: Status
    links: Links


class TaskRerunAccepted(OperationAccepted):
    task: int = Field(..., description="The task re-run.")
    version: int = Field(..., description="Its new version.")
    dependents: list[int] = Field(..., description="Tasks re-run because they depend on it.")


class OperationPublic(OperationResult):
    """An operation: route, simplicity, plan, tasks (with earlier versions), usage, answer."""

    model_config = ConfigDict(json_schema_extra={"title": "OperationPublic"})


class OperationPage(BaseModel):
    items: list[OperationSummary]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next (older) page; null on the last page."
    )


class Health(BaseModel):
    status: Literal["ok"]


class Ready(BaseModel):
    status: Literal["ready"]
    database: Literal["ok"]


def links(operation_id: str) -> Links:
    base = f"/v1/operations/{operation_id}"
    return Links(self=base, events=f"{base}/events", cancel=f"{base}/cancel", plan=f"{base}/plan")
