"""``/v1/gateway/requests``: the gateway's request log, newest first.

A key sees its owner's requests, whichever of the owner's keys made them; keyless dev mode
sees every owner's, and a key of an admin plan any owner's it names.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from crewchief.api.deps import CallerDep, ChiefDep
from crewchief.api.errors import ERROR_RESPONSES, ApiError, ErrorResponse, query_error
from crewchief.api.routes.operations import decode_cursor, page_cursor
from crewchief.errors import InvalidRequest
from crewchief.results import GatewayRequest

router = APIRouter(prefix="/v1/gateway", tags=["gateway"], responses=ERROR_RESPONSES)

_WHEN = (
    " A date (`2026-03-01`, a UTC day), a date and time (`2026-03-01T12:00:00Z`; UTC when"
    " it has no zone) or a span back from now (`7d`, `12h`)."
)


class GatewayRequestPage(BaseModel):
    items: list[GatewayRequest]
    next_cursor: str | None = Field(
        None, description="Pass as `cursor` for the next page; null on the last page."
    )


@router.get(
    "/requests",
    response_model=GatewayRequestPage,
    summary="The gateway's request log, newest first",
    responses={403: {"model": ErrorResponse, "description": "Another owner's requests."}},
)
async def list_gateway_requests(
    caller: CallerDep,
    chief: ChiefDep,
    role: Annotated[
        str | None,
        Query(min_length=1, max_length=64, description="Only requests for this gateway role."),
    ] = None,
    since: Annotated[
        str | None, Query(max_length=64, description="Requests at or after this time." + _WHEN)
    ] = None,
    until: Annotated[
        str | None,
        Query(max_length=64, description="Requests before this time; a date includes its day."),
    ] = None,
    owner: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="Only this owner's requests. A key sees its own owner's only (another"
            " owner gets 403), unless its plan is an admin plan.",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Page size.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
    ] = None,
) -> GatewayRequestPage:
    """Each answer the gateway gave: its role, model, `auto` tier, cache state, latency,
    failed attempts before it, tokens, cost, API key and conversation, and the start of the
    last user message (not the messages). An answer appears a moment after it was given."""
    if owner is not None and not (caller.owner is None or owner == caller.owner or caller.admin):
        message = "an API key sees its own owner's requests only"
        raise ApiError(
            403,
            "forbidden",
            f"query.owner: {message}",
            [{"path": "query.owner", "message": message}],
        )
    scope = caller.scope if owner is None else {"owner": owner}
    before = decode_cursor(cursor) if cursor else None
    try:
        items = await chief.gateway_requests(
            limit=limit + 1, before=before, role=role, since=since, until=until, **scope
        )
    except InvalidRequest as exc:
        raise query_error(exc) from None
    more = len(items) > limit
    items = items[:limit]
    next_cursor = page_cursor(items[-1].created_at, items[-1].id) if more and items else None
    return GatewayRequestPage(items=items, next_cursor=next_cursor)
