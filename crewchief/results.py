"""Public read models: what ``Crewchief.get``/``run`` return and ``ops show --json`` prints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

# An operation in one of these statuses has ended.
TERMINAL_STATUSES = ("completed", "failed", "cancelled", "rejected")
# Every status an operation can have.
STATUSES = ("running", "awaiting_approval", *TERMINAL_STATUSES)


class TokenUsage(BaseModel):
    input: int = 0
    output: int = Field(0, description="Output tokens, reasoning included.")
    reasoning: int = 0


class ModelUsage(BaseModel):
    """Usage of one model under one alias for one node and purpose, summed over its calls.

    ``purpose`` says what a call was for beyond its node: ``meta:search_codebase``
    is the delegate answering the planner's meta-tool call.
    """

    alias: str
    model: str
    node: str
    purpose: str | None = None
    calls: int
    failed_calls: int
    input: int
    output: int
    reasoning: int


class TaskResult(BaseModel):
    """One task; ``history`` holds its earlier versions when it was re-run."""

    sequence: int
    version: int = 1
    current: bool = True
    description: str
    instructions: str | None = None
    active_form: str
    skill: str | None = None
    depends_on: list[int] = Field(default_factory=list)
    status: str
    result: str | None = None
    error: str | None = None
    model: str | None = None
    usage: TokenUsage = Field(default_factory=TokenUsage)
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    history: list[TaskResult] = Field(default_factory=list)


class EventRecord(BaseModel):
    seq: int
    type: str
    payload: dict[str, Any]
    created_at: datetime


class Simplicity(BaseModel):
    """What the simplicity detector decided: score (1 = simple), tier and reasons."""

    score: float | None = None
    tier: str | None = None
    reasons: list[str] = Field(default_factory=list)


class OperationSummary(BaseModel):
    id: str
    status: str
    request: str
    route: str | None = None
    created_at: datetime
    completed_at: datetime | None = None
    tasks: int = 0


class OperationResult(BaseModel):
    """An operation as stored: route, plan, tasks, usage, answer and (optionally) events."""

    id: str
    status: str
    request: str
    workspace: str | None = None
    route: str | None = None
    route_forced: bool = False
    simplicity: Simplicity = Field(default_factory=Simplicity)
    plan_text: str | None = None
    plan_generated_at: datetime | None = None
    planning_usage: TokenUsage = Field(default_factory=TokenUsage)
    answer: str | None = None
    error: str | None = None
    tasks: list[TaskResult] = Field(default_factory=list)
    usage: TokenUsage = Field(default_factory=TokenUsage)
    usage_by_model: list[ModelUsage] = Field(default_factory=list)
    metadata: dict[str, Any] | None = None
    created_at: datetime
    started_at: datetime | None = None
    completed_at: datetime | None = None
    events: list[EventRecord] | None = None
    owner: str | None = None
    options: dict[str, Any] | None = None
    planning_context: dict[str, Any] | None = Field(
        None,
        description="What the planner's prompt got beyond the request, and why: `memory`"
        " (earlier operations of the same owner in the same workspace, with their similarity)"
        " and `profile` (the owner's preferences); null when it got nothing more.",
    )

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES
