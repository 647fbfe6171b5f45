"""``/v1/usage``: model calls, tokens and cost from the usage ledger, filtered and grouped.

A key sees its owner's usage only: the calls of its owner's operations and gateway
requests, whichever of the owner's keys made them. Keyless dev mode sees every owner's, and
a key of an admin plan any owner's it names.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from crewchief.api.deps import CallerDep, ChiefDep
from crewchief.api.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from crewchief.errors import InvalidRequest
from crewchief.results import USAGE_GROUPS, UsageReport

router = APIRouter(prefix="/v1", tags=["usage"], responses=ERROR_RESPONSES)

_WHEN = (
    " A date (`2026-03-01`, a UTC day), a date and time (`2026-03-01T12:00:00Z`; UTC when"
    " it has no zone) or a span back from now (`7d`, `12h`)."
)


def _filter(what: str) -> Any:
    return Query(min_length=1, max_length=200, description=f"Only calls {what}.")


@router.get(
    "/usage",
    response_model=UsageReport,
    summary="Model usage and cost: filtered, grouped, with totals",
    responses={403: {"model": ErrorResponse, "description": "Another owner's usage."}},
)
async def read_usage(
    caller: CallerDep,
    chief: ChiefDep,
    group_by: Annotated[
        list[str] | None,
        Query(
            max_length=len(USAGE_GROUPS),
            description="Group by any of "
            + ", ".join(f"`{g}`" for g in USAGE_GROUPS)
            + ": repeat the parameter or separate names with commas. `day` is a UTC day;"
            " `task` groups by operation and task. None: the totals alone.",
        ),
    ] = None,
    since: Annotated[
        str | None, Query(max_length=64, description="Calls at or after this time." + _WHEN)
    ] = None,
    until: Annotated[
        str | None,
        Query(max_length=64, description="Calls before this time; a date includes its day."),
    ] = None,
    model: Annotated[str | None, _filter("of this model spec (`openai:gpt-5`)")] = None,
    role: Annotated[str | None, _filter("for this gateway role")] = None,
    operation_id: Annotated[str | None, _filter("of this operation")] = None,
    key: Annotated[str | None, _filter("made with this API key id")] = None,
    owner: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="Only this owner's calls. A key sees its own owner's usage only"
            " (another owner gets 403), unless its plan is an admin plan.",
        ),
    ] = None,
) -> UsageReport:
    """Calls, tokens (input, cached input, output, reasoning) and cost in US dollars per
    group, with the totals. A call's cost is what the provider's response stated, else its
    tokens at the price table's prices; calls of local, fake and unknown models cost 0 and
    are counted in `unpriced_calls`."""
    mine = caller.owner is None or owner == caller.owner or caller.admin
    if owner is not None and not mine:
        raise ApiError(
            403,
            "forbidden",
            "query.owner: an API key sees its own owner's usage only",
            [{"path": "query.owner", "message": "an API key sees its own owner's usage only"}],
        )
    scope = caller.scope if owner is None else {"owner": owner}
    try:
        return await chief.usage(
            group_by=group_by,
            since=since,
            until=until,
            model=model,
            role=role,
            operation_id=operation_id,
            key=key,
            **scope,
        )
    except InvalidRequest as exc:
        details = [{**d, "path": "query." + d["path"]} for d in exc.details]
        first = details[0] if details else {"path": "query", "message": str(exc)}
        raise ApiError(
            422, "invalid_request", f"{first['path']}: {first['message']}", details
        ) from None
