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
    cached_input: int = Field(0, description="Of `input`, read from the provider's cache.")
    output: int
    reasoning: int
    cost_usd: float = Field(
        0.0, description="What these calls cost in US dollars (unpriced calls count 0)."
    )
    unpriced_calls: int = Field(
        0, description="Calls of a model with no price (local, fake or unknown): counted as 0."
    )


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
    updated_at: datetime | None = Field(None, description="When its status last changed.")
    tasks: int = 0
    api_key_id: str | None = Field(
        None, description="The API key that started it (null: started through the library)."
    )
    simplicity_score: float | None = Field(
        None, description="The simplicity detector's score of the request (1 = simple)."
    )
    cost_usd: float = Field(
        0.0, description="What its model calls cost so far in US dollars (unpriced calls count 0)."
    )


class OperationStats(BaseModel):
    """How many operations there are in a period, by route and by status."""

    since: datetime | None = Field(None, description="Operations created at or after this time.")
    until: datetime | None = Field(None, description="Operations created before this time.")
    total: int = 0
    by_route: dict[str, int] = Field(
        default_factory=dict,
        description="`fast`, `plan` and `undecided` (not routed yet), each present, 0 or more.",
    )
    by_status: dict[str, int] = Field(
        default_factory=dict,
        description="Every status (`running`, `awaiting_approval`, `completed`, `failed`,"
        " `cancelled`, `rejected`), each present, 0 or more.",
    )


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
    cost_usd: float = Field(
        0.0,
        description="What the operation's model calls cost in US dollars: the providers'"
        " stated costs, else the price table's; calls of unpriced models count 0.",
    )
    unpriced_calls: int = Field(
        0, description="Model calls with no price (local, fake or unknown models)."
    )
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


# What ``GET /v1/usage`` (``Crewchief.usage``) can group by.
USAGE_GROUPS: tuple[str, ...] = (
    "model",
    "role",
    "key",
    "owner",
    "day",
    "operation",
    "task",
    "alias",
    "node",
    "paid_by",
)


class UsageTotals(BaseModel):
    """Model calls summed: how many, their tokens and their cost."""

    calls: int = 0
    failed_calls: int = 0
    input_tokens: int = 0
    cached_input_tokens: int = Field(0, description="Of `input_tokens`, read from a cache.")
    output_tokens: int = Field(0, description="Reasoning tokens included.")
    reasoning_tokens: int = 0
    cost_usd: float = Field(0.0, description="US dollars; unpriced calls count 0.")
    unpriced_calls: int = Field(
        0, description="Calls of models with no price (local, fake or unknown)."
    )


class UsageRow(UsageTotals):
    """The totals of one group: ``group`` holds the value of each grouping asked for."""

    group: dict[str, str | int | None] = Field(
        default_factory=dict,
        description='`{"model": "openai:gpt-5", "day": "2026-03-01"}`: the value of each'
        " `group_by` for these calls (`task` gives `operation` and `task`); null where the"
        " calls have none (the role of an operation's call, the key of a library call).",
    )


class UsageReport(BaseModel):
    """Model usage and cost over a period, grouped as asked, with the totals."""

    since: datetime | None = Field(None, description="Calls at or after this time (UTC).")
    until: datetime | None = Field(None, description="Calls before this time (UTC).")
    group_by: list[str] = Field(default_factory=list)
    rows: list[UsageRow] = Field(default_factory=list)
    totals: UsageTotals = Field(default_factory=UsageTotals)
    prices_as_of: str = Field(
        "",
        description="The date of the shipped price table that priced calls without a"
        " stated cost (entries of the `[prices]` setting are the configuration's own).",
    )


class GatewayRequest(BaseModel):
    """One answer of the gateway, as its request log shows it: who asked, which model
    answered, from the cache or not, how long it took, what it used and cost. Figures are
    null for answers kept before the gateway recorded them."""

    id: str = Field(description="The answer's `x_crewchief.id`.")
    created_at: datetime
    owner: str | None = None
    api_key_id: str | None = None
    role: str
    model: str | None = Field(None, description="The model that answered (a cached answer's).")
    auto_tier: str | None = Field(None, description="For `model: auto`: the tier chosen.")
    simplicity_score: float | None = Field(None, description="For `model: auto`.")
    cache: str = Field(description="`off`, `miss`, `hit`, `semantic` or `bypass`.")
    stream: bool | None = Field(None, description="Whether the client asked for a stream.")
    latency_ms: float | None = Field(
        None, description="From the request's arrival to its answer (a stream's end)."
    )
    fallbacks: list[dict[str, Any]] = Field(
        default_factory=list,
        description="Failed attempts before the answer, in order: `{model, error}` each.",
    )
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = Field(None, description="US dollars; 0 for a cached answer.")
    conversation_id: str | None = None
    question: str | None = Field(
        None, description="The start of the last user message (at most 200 characters)."
    )


# What ``GET /v1/feedback/summary`` (``Crewchief.feedback_summary``) can group by.
FEEDBACK_GROUPS: tuple[str, ...] = ("role", "model", "skill", "route", "tier", "kind")
FEEDBACK_TARGETS: tuple[str, ...] = ("operation", "task", "response")


class FeedbackRecord(BaseModel):
    """One rating of an operation, a version of a task or a gateway response, with the
    dimensions of its target when it was rated."""

    id: str
    target: str = Field(description="`operation`, `task` or `response`.")
    operation_id: str | None = None
    task: int | None = Field(None, description="The task's sequence number (task targets).")
    task_version: int | None = Field(None, description="The version of the task rated.")
    response_id: str | None = Field(None, description="The gateway response's `x_crewchief.id`.")
    thumb: str | None = Field(None, description="`up` or `down` (a thumb rating).")
    stars: int | None = Field(None, description="1 to 5 (a star rating).")
    score: float = Field(description="The rating in 0..1: up 1, down 0, stars (n - 1) / 4.")
    correction: str | None = Field(None, description="What the answer should have been.")
    comment: str | None = None
    role: str | None = Field(None, description="The gateway role (responses).")
    model: str | None = Field(None, description="The model that wrote what was rated.")
    skill: str | None = Field(None, description="The task's skill (tasks).")
    route: str | None = Field(
        None,
        description="`fast` or `plan` (operations; tasks are `plan`), `auto:<tier>` for a"
        " gateway response to `model: auto`, `gateway` for other responses.",
    )
    tier: str | None = Field(None, description="The tier of the API key that made the target.")
    simplicity_score: float | None = Field(
        None, description="The simplicity detector's score of the request (1 = simple)."
    )
    owner: str | None = Field(None, description="Who rated (null: no API key).")
    api_key_id: str | None = None
    created_at: datetime
    updated_at: datetime


class FeedbackSaved(FeedbackRecord):
    replaced: bool = Field(description="Whether it replaced the owner's earlier rating.")


class FeedbackGroup(BaseModel):
    """Ratings summed: how many, their mean score, the share that is positive."""

    count: int = 0
    mean_score: float | None = Field(None, description="The mean of the scores (0..1).")
    positive_share: float | None = Field(
        None, description="The share of ratings above 0.5: thumbs up, 4 and 5 stars."
    )
    corrections: int = Field(0, description="Ratings with a correction.")


class FeedbackRow(FeedbackGroup):
    group: str | None = Field(description="The value of `by` (null: ratings without one).")


class PathScores(BaseModel):
    fast: FeedbackGroup = Field(
        default_factory=FeedbackGroup,
        description="Fast-path operations and `auto` responses of the fast tier.",
    )
    planned: FeedbackGroup = Field(
        default_factory=FeedbackGroup,
        description="Planned operations, their tasks, `auto` responses of other tiers.",
    )


class SimplicityFeedback(BaseModel):
    """How ratings relate to the simplicity score: a positive correlation means simpler
    requests (the fast path) are rated better, a negative one that they are rated worse."""

    correlation: float | None = Field(
        None,
        description="Pearson's r between the simplicity score and the rating score; null"
        " with fewer than 3 ratings or when either does not vary.",
    )
    n: int = Field(0, description="Ratings of targets with a simplicity score.")
    by_path: PathScores = Field(default_factory=PathScores)


class FeedbackSummary(BaseModel):
    """Ratings over a period, grouped, with the totals and the simplicity block."""

    by: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    rows: list[FeedbackRow] = Field(default_factory=list)
    totals: FeedbackGroup = Field(default_factory=FeedbackGroup)
    simplicity: SimplicityFeedback = Field(default_factory=SimplicityFeedback)
