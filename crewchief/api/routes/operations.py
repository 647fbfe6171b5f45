"""`/v1/operations`: start, read, list, cancel, review the plan, re-run a task."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Query, Response
from fastapi import Path as PathParam

from crewchief.api.deps import CallerDep, ChiefDep, SettingsDep
from crewchief.api.errors import (
    CONFLICT,
    ERROR_RESPONSES,
    NOT_FOUND,
    SPENDING,
    ApiError,
    query_error,
)
from crewchief.api.schemas import (
    OperationAccepted,
    OperationCreate,
    OperationPage,
    OperationPublic,
    Status,
    TaskRerunAccepted,
    links,
)
from crewchief.client.validate import workspace_path
from crewchief.config import Settings
from crewchief.errors import InvalidRequest
from crewchief.results import OperationStats
from crewchief.steering import PlanDecision, TaskRerun

router = APIRouter(prefix="/v1/operations", tags=["operations"], responses=ERROR_RESPONSES)

OperationId = Annotated[str, PathParam(max_length=64, description="The operation's id.")]


def _invalid(path: str, message: str) -> ApiError:
    return ApiError(
        422, "invalid_request", f"{path}: {message}", [{"path": path, "message": message}]
    )


def check_workspace(workspace: str | None, settings: Settings) -> str | None:
    """The server's rule on top of the request validator: a workspace lies under an allowed root.

    Checked on the resolved path before anything else looks at it, so a caller learns
    nothing about directories outside the roots; that it exists is the validator's check
    (``Crewchief.start``).
    """
    if workspace is None:
        return None
    roots = settings.api.workspace_roots
    if not roots:
        raise _invalid(
            "body.workspace",
            "this server allows no workspaces (configure api.workspace_roots"
            " or start it with --workspace-root)",
        )
    if "\x00" in workspace:
        raise _invalid("body.workspace", "must not contain NUL bytes")
    try:
        path = Path(workspace).expanduser()
    except RuntimeError:  # "~someone" without a home directory: not absolute either
        path = Path(workspace)
    if not path.is_absolute():
        raise _invalid("body.workspace", f"expected an absolute path, got {workspace!r}")
    try:
        resolved = workspace_path(path)
    except InvalidRequest as exc:  # the file system refused the path (too long, a link loop)
        raise _invalid("body.workspace", str(exc).removeprefix("workspace: ")) from None
    if not any(resolved == root or resolved.is_relative_to(root) for root in roots):
        allowed = ", ".join(str(r) for r in roots)
        raise _invalid("body.workspace", f"{workspace!r} is not under an allowed root ({allowed})")
    return str(resolved)


def check_models(models: dict[str, str] | None, settings: Settings) -> dict[str, str] | None:
    """Per-operation model bindings, limited to specs the server allows.

    The refusal names the rule, not the allowed specs: they may name the server's files.
    """
    if not models:
        return None
    allowed = set(settings.api.allowed_models)
    for cfg in settings.models.values():
        allowed |= {cfg.model, *cfg.fallbacks}
    for alias, spec in models.items():
        if spec not in allowed:
            raise _invalid(
                f"body.models.{alias}",
                f"{spec!r} is not allowed on this server (a request may bind only the models"
                " the server is configured with or lists in its api.allowed_models setting)",
            )
    return dict(models)


def library_rule(check: Callable[[Any, Settings], Any], settings: Settings) -> Callable[[Any], Any]:
    """A rule of this server (``check_workspace``, ``check_models``) for the other protocols
    (MCP, A2A): its refusal is the library's :class:`InvalidRequest`, naming the argument
    (``workspace: ...``) rather than the REST body (``body.workspace: ...``)."""

    def rule(value: Any) -> Any:
        try:
            return check(value, settings)
        except ApiError as exc:
            details = [{**d, "path": d["path"].removeprefix("body.")} for d in exc.details]
            raise InvalidRequest(exc.message.removeprefix("body."), details) from None

    return rule


def page_cursor(created_at: datetime, op_id: str) -> str:
    """An opaque cursor for the item after ``(created_at, op_id)`` of a newest-first list."""
    raw = json.dumps([created_at.isoformat(), op_id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    """``(created_at, id)`` of a :func:`page_cursor` (422 naming ``query.cursor`` otherwise)."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, op_id = json.loads(raw)
        if not isinstance(op_id, str):
            raise TypeError(op_id)
        return datetime.fromisoformat(created), op_id
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise _invalid("query.cursor", "not a cursor returned by this API") from None


@router.post(
    "",
    status_code=202,
    response_model=OperationAccepted,
    responses=SPENDING,
    summary="Start an operation",
    description="Validates the request, records the operation and runs it in the background. "
    "Follow it with `GET /v1/operations/{id}/events`.",
)
async def create_operation(
    body: OperationCreate,
    caller: CallerDep,
    chief: ChiefDep,
    settings: SettingsDep,
    response: Response,
) -> OperationAccepted:
    workspace = check_workspace(body.workspace, settings)
    models = check_models(body.models, settings)
    handle = await chief.start(
        body.request,
        workspace=workspace,
        route=body.route,
        metadata=body.metadata,
        approve_plan=body.approve_plan,
        models=models,
        owner=caller.owner_for_new,
        api_key_id=caller.key_id,
    )
    handle.detach()
    response.headers["Location"] = f"/v1/operations/{handle.id}"
    return OperationAccepted(id=handle.id, status="running", links=links(handle.id))


_WHEN = (
    " A date (`2026-03-01`, a UTC day), a date and time (`2026-03-01T12:00:00Z`; UTC when"
    " it has no zone) or a span back from now (`7d`, `12h`)."
)
Since = Annotated[
    str | None,
    Query(max_length=64, description="Only operations created at or after this time." + _WHEN),
]
Until = Annotated[
    str | None,
    Query(
        max_length=64,
        description="Only operations created before this time; a date includes its day.",
    ),
]


@router.get("", response_model=OperationPage, summary="List operations, newest first")
async def list_operations(
    caller: CallerDep,
    chief: ChiefDep,
    status: Annotated[Status | None, Query(description="Only operations with this status.")] = None,
    route: Annotated[
        Literal["fast", "plan", "undecided"] | None,
        Query(description="Only operations of this route (`undecided`: not routed yet)."),
    ] = None,
    key: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="Only those this API key id started."),
    ] = None,
    since: Since = None,
    until: Until = None,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Only those whose request contains this text (ignoring case), or"
            " whose id starts with it.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 20,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
    ] = None,
) -> OperationPage:
    """Each with its route, simplicity score, the API key that started it and what its
    model calls cost so far. The filters combine; paging keeps them (pass the same ones
    with the cursor)."""
    before = decode_cursor(cursor) if cursor else None
    try:
        items = await chief.list(
            status=status, limit=limit + 1, before=before, route=route, key=key, since=since,
            until=until, q=q, **caller.scope,
        )  # fmt: skip
    except InvalidRequest as exc:
        raise query_error(exc) from None
    more = len(items) > limit
    items = items[:limit]
    next_cursor = page_cursor(items[-1].created_at, items[-1].id) if more and items else None
    return OperationPage(items=items, next_cursor=next_cursor)


@router.get(
    "/stats",
    response_model=OperationStats,
    summary="How many operations, by route and by status",
)
async def operation_stats(
    caller: CallerDep, chief: ChiefDep, since: Since = None, until: Until = None
) -> OperationStats:
    """Of the operations created in the period (all time by default) that the key sees: its
    owner's (keyless dev mode: every owner's). `by_route` has `fast`, `plan` and
    `undecided` (not routed yet); `by_status` has every status; each is there, 0 or more."""
    try:
        return await chief.operation_stats(since=since, until=until, **caller.scope)
    except InvalidRequest as exc:
        raise query_error(exc) from None


@router.get(
    "/{operation_id}",
    response_model=OperationPublic,
    responses=NOT_FOUND,
    summary="One operation: route, plan, tasks, usage, status, answer, error",
)
async def get_operation(
    operation_id: OperationId,
    caller: CallerDep,
    chief: ChiefDep,
    events: Annotated[bool, Query(description="Include the stored events.")] = False,
) -> Any:
    return await chief.get(operation_id, events=events, **caller.scope)


@router.post(
    "/{operation_id}/cancel",
    response_model=OperationPublic,
    responses=NOT_FOUND,
    summary="Cancel an operation (idempotent)",
    description="Stops the run promptly; the operation and its unfinished tasks end `cancelled`. "
    "An operation that already ended is returned unchanged.",
)
async def cancel_operation(operation_id: OperationId, caller: CallerDep, chief: ChiefDep) -> Any:
    await chief.get(operation_id, **caller.scope)
    return await chief.cancel(operation_id)


@router.post(
    "/{operation_id}/plan",
    status_code=202,
    response_model=OperationAccepted,
    responses={**NOT_FOUND, **CONFLICT},
    summary="Decide on a plan that awaits approval",
    description="`accept` runs it, `edit` runs the given task list instead, `replan` sends "
    "feedback to the planner (the new plan awaits approval again), `reject` ends the "
    "operation `rejected`. Only for an operation in `awaiting_approval`.",
)
async def review_plan(
    operation_id: OperationId,
    decision: Annotated[PlanDecision, Body()],
    caller: CallerDep,
    chief: ChiefDep,
) -> OperationAccepted:
    handle = await chief.review_plan(operation_id, decision, **caller.scope)
    handle.detach()
    status = "rejected" if decision.action == "reject" else "running"
    return OperationAccepted(id=operation_id, status=status, links=links(operation_id))


@router.post(
    "/{operation_id}/tasks/{task_id}/rerun",
    status_code=202,
    response_model=TaskRerunAccepted,
    responses={**NOT_FOUND, **CONFLICT},
    summary="Re-run a task and every task that depends on it",
    description="Forks the operation from the checkpoint before the task ran, optionally with "
    "a new description or extra instructions. Other tasks keep their results; earlier "
    "versions stay in each task's `history`. Only for an operation that ended.",
)
async def rerun_task(
    operation_id: OperationId,
    task_id: Annotated[int, PathParam(ge=1, le=1000, description="The task's sequence number.")],
    caller: CallerDep,
    chief: ChiefDep,
    body: Annotated[TaskRerun | None, Body()] = None,
) -> TaskRerunAccepted:
    body = body or TaskRerun()
    handle = await chief.rerun_task(
        operation_id,
        task_id,
        description=body.description,
        instructions=body.instructions,
        **caller.scope,
    )
    handle.detach()
    return TaskRerunAccepted(
        id=operation_id,
        status="running",
        links=links(operation_id),
        task=task_id,
        version=handle.rerun["version"],
        dependents=handle.rerun["dependents"],
    )
