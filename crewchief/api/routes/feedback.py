"""Feedback: rate an operation, a task or a gateway answer; list the ratings; see
satisfaction by role, model, skill, route and tier; export preference pairs for DPO.

A key rates and sees its owner's targets and ratings only (another owner's operation or
answer is not found); keyless dev mode rates any and sees every rating.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from fastapi import Path as PathParam
from pydantic import BaseModel, ConfigDict, Field

from crewchief.api.deps import CallerDep, ChiefDep
from crewchief.api.errors import CONFLICT, ERROR_RESPONSES, NOT_FOUND, ApiError
from crewchief.api.routes.operations import OperationId
from crewchief.client.validate import MAX_COMMENT_CHARS, MAX_CORRECTION_CHARS
from crewchief.errors import InvalidRequest
from crewchief.results import FEEDBACK_GROUPS, FeedbackRecord, FeedbackSaved, FeedbackSummary

router = APIRouter(prefix="/v1", tags=["feedback"], responses=ERROR_RESPONSES)

_WHEN = (
    " A date (`2026-03-01`, a UTC day), a date and time (`2026-03-01T12:00:00Z`) or a span"
    " back from now (`7d`, `12h`)."
)
_SAVED = {
    200: {"model": FeedbackSaved, "description": "It replaced your earlier rating."},
    201: {"model": FeedbackSaved, "description": "Your first rating of it."},
    **NOT_FOUND,
    **CONFLICT,
}


class FeedbackCreate(BaseModel):
    """One rating: `thumb` or `stars` (exactly one), an optional correction and comment.
    It replaces your earlier rating of the same target, correction included."""

    model_config = ConfigDict(extra="forbid")

    thumb: Literal["up", "down"] | None = Field(None, description="A thumb rating.")
    stars: int | None = Field(None, ge=1, le=5, description="A star rating, 1 to 5.")
    correction: str | None = Field(
        None,
        min_length=1,
        max_length=MAX_CORRECTION_CHARS,
        description="What the answer should have been: exported as the chosen answer of a"
        " preference pair.",
    )
    comment: str | None = Field(None, min_length=1, max_length=MAX_COMMENT_CHARS)


class TaskFeedbackCreate(FeedbackCreate):
    version: int | None = Field(
        None, ge=1, le=100_000, description="The task's version rated (default: the current)."
    )


async def _save(
    response: Response, chief: Any, caller: Any, body: FeedbackCreate, **target: Any
) -> FeedbackSaved:
    fields = body.model_dump(exclude={"version"})
    saved = await chief.feedback(**target, **fields, api_key_id=caller.key_id, **caller.scope)
    response.status_code = 200 if saved.replaced else 201
    return saved


@router.post(
    "/operations/{operation_id}/feedback",
    status_code=201,
    response_model=FeedbackSaved,
    responses=_SAVED,
    summary="Rate an operation's answer",
)
async def rate_operation(
    operation_id: OperationId,
    body: FeedbackCreate,
    caller: CallerDep,
    chief: ChiefDep,
    response: Response,
) -> FeedbackSaved:
    """Of an operation that ended. `201` for your first rating of it, `200` when it
    replaced your earlier one."""
    return await _save(response, chief, caller, body, operation_id=operation_id)


@router.post(
    "/operations/{operation_id}/tasks/{sequence}/feedback",
    status_code=201,
    response_model=FeedbackSaved,
    responses=_SAVED,
    summary="Rate a task's result",
)
async def rate_task(
    operation_id: OperationId,
    sequence: Annotated[int, PathParam(ge=1, le=1000, description="The task's sequence number.")],
    body: TaskFeedbackCreate,
    caller: CallerDep,
    chief: ChiefDep,
    response: Response,
) -> FeedbackSaved:
    """Its current version, or `version` (a re-run keeps the earlier versions): each version
    is rated on its own, and ratings decide which of two versions an exported preference
    pair prefers."""
    return await _save(
        response, chief, caller, body, operation_id=operation_id, task=sequence,
        version=body.version,
    )  # fmt: skip


@router.post(
    "/responses/{response_id}/feedback",
    status_code=201,
    response_model=FeedbackSaved,
    responses={**_SAVED, 404: {**NOT_FOUND[404], "description": "No such answer for this key."}},
    summary="Rate a gateway answer by its x_crewchief.id",
)
async def rate_response(
    response_id: Annotated[
        str,
        PathParam(
            min_length=1,
            max_length=64,
            description="`x_crewchief.id` of the answer (also its `X-Crewchief-Response-Id`"
            " header): `resp_...`.",
        ),
    ],
    body: FeedbackCreate,
    caller: CallerDep,
    chief: ChiefDep,
    response: Response,
) -> FeedbackSaved:
    """A chat completion of `/v1/chat/completions`, streamed or not, answered from the cache
    or not."""
    return await _save(response, chief, caller, body, response_id=response_id)


def _query_error(exc: InvalidRequest) -> ApiError:
    details = [{**d, "path": "query." + d["path"]} for d in exc.details]
    first = details[0] if details else {"path": "query", "message": str(exc)}
    return ApiError(422, "invalid_request", f"{first['path']}: {first['message']}", details)


Since = Annotated[
    str | None, Query(max_length=64, description="Ratings given at or after this time." + _WHEN)
]
Until = Annotated[
    str | None,
    Query(max_length=64, description="Ratings given before this time; a date includes its day."),
]


@router.get("/feedback", response_model=list[FeedbackRecord], summary="Your ratings")
async def list_feedback(
    caller: CallerDep,
    chief: ChiefDep,
    kind: Annotated[
        Literal["operation", "task", "response"] | None,
        Query(description="Only ratings of this kind of target."),
    ] = None,
    since: Since = None,
    until: Until = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 100,
) -> list[FeedbackRecord]:
    """The last given (or changed) first, each with its target's dimensions."""
    try:
        return await chief.list_feedback(
            kind=kind, since=since, until=until, limit=limit, **caller.scope
        )
    except InvalidRequest as exc:
        raise _query_error(exc) from None


@router.get(
    "/feedback/summary",
    response_model=FeedbackSummary,
    summary="Satisfaction by role, model, skill, route or tier, and the simplicity score",
)
async def feedback_summary(
    caller: CallerDep,
    chief: ChiefDep,
    by: Annotated[
        Literal["role", "model", "skill", "route", "tier", "kind"] | None,
        Query(
            description="Group by "
            + ", ".join(f"`{g}`" for g in FEEDBACK_GROUPS)
            + " (the target: operation, task or response). None: the totals alone."
        ),
    ] = None,
    since: Since = None,
    until: Until = None,
) -> FeedbackSummary:
    """Per group: how many ratings, their mean score (0..1: up 1, down 0, stars (n - 1) /
    4), the share above 0.5 and how many carry a correction. `simplicity` relates ratings
    to the simplicity score: Pearson's r (positive: simpler requests rated better) and the
    mean score of fast-path against planned answers."""
    try:
        return await chief.feedback_summary(by=by, since=since, until=until, **caller.scope)
    except InvalidRequest as exc:
        raise _query_error(exc) from None


@router.get(
    "/feedback/export",
    response_class=Response,
    summary="Preference pairs for DPO (JSON Lines)",
    responses={200: {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}}},
)
async def export_feedback(
    caller: CallerDep,
    chief: ChiefDep,
    format: Annotated[
        Literal["dpo"], Query(description="`dpo`: prompt, chosen, rejected.")
    ] = "dpo",
    since: Since = None,
    until: Until = None,
) -> Response:
    """One `{prompt, chosen, rejected, source, meta}` object per line, from corrections,
    task reruns and regenerated gateway answers, with the server's `feedback_redact`
    applied (the schema: docs/feedback.md)."""
    try:
        pairs = await chief.export_preferences(since=since, until=until, **caller.scope)
    except InvalidRequest as exc:
        raise _query_error(exc) from None
    lines = "".join(json.dumps(pair, ensure_ascii=False) + "\n" for pair in pairs)
    return Response(lines, media_type="application/x-ndjson")
