"""``/v1/budgets``: what your key and its owner may spend, what they spent, and the limits
you set yourself.

Your plan's limits (the operator's, in the settings' ``[plans]``) and the limits the
operator set for you with the CLI or an admin key are shown but stay theirs to change; an
owner adds limits of their own for the owner or for any of their keys. An admin key may
read and set the limits of any owner or key (``owner``, ``subject``).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from crewchief.api.auth import Caller
from crewchief.api.deps import CallerDep, ChiefDep
from crewchief.api.errors import CONFLICT, ERROR_RESPONSES, ApiError, ErrorResponse
from crewchief.client.facade import Crewchief

router = APIRouter(prefix="/v1", tags=["budgets"], responses=ERROR_RESPONSES)

_FORBIDDEN = {
    403: {"model": ErrorResponse, "description": "Another owner's budgets, without an admin key."}
}
_NO_KEY = {404: {"model": ErrorResponse, "description": "No such key of your owner."}}


class BudgetLimits(BaseModel):
    """Limits in US dollars per UTC day and month; leave one out (or null) for none."""

    model_config = ConfigDict(extra="forbid")

    daily_usd: float | None = Field(None, ge=0, le=1e9, allow_inf_nan=False)
    monthly_usd: float | None = Field(None, ge=0, le=1e9, allow_inf_nan=False)
    enforcement: Literal["hard", "soft"] = Field(
        "hard", description="hard: no call passes the limit; soft: a warning only."
    )
    on_exceed: Literal["refuse", "downgrade"] = Field(
        "refuse",
        description="refuse: 402 budget_exceeded; downgrade: the answer comes from the "
        "cheaper downgrade model instead (named in the response's metadata).",
    )
    subject: str | None = Field(
        None,
        max_length=64,
        description="Key scope: the key id (default: the calling key; one of your keys). "
        "Owner scope: the owner (admin keys only; default: yours).",
    )


async def _subject(caller: Caller, chief: Crewchief, scope: str, subject: str | None) -> str:
    """Whose limits a caller may set in ``scope``: its own owner, one of its owner's keys,
    or anyone's with an admin key."""
    if scope == "owner":
        if subject is not None and subject != (caller.owner or "") and not caller.admin:
            raise ApiError(403, "forbidden", "only an admin key may set another owner's budget")
        return subject if subject is not None else caller.owner or ""
    key = subject or caller.key_id
    if caller.admin or caller.owner is None:
        return key
    info = await chief.key_info(key)
    if info is None or info.owner != caller.owner:
        raise ApiError(404, "not_found", f"no API key {key!r} of owner {caller.owner!r}")
    return key


@router.get("/budgets", summary="Your plan, budgets and spend", responses=_FORBIDDEN)
async def read_budgets(
    caller: CallerDep,
    chief: ChiefDep,
    owner: str | None = Query(None, description="Another owner (admin keys only)."),
    key: str | None = Query(None, description="Another key (admin keys only)."),
) -> dict[str, Any]:
    """Each limit on your key and owner (your plan's, the operator's, your own) with what
    was spent this period, what calls under way hold, what is left and when it resets."""
    if (owner is not None or key is not None) and not caller.admin:
        raise ApiError(403, "forbidden", "only an admin key may read another owner's budgets")
    who = owner if owner is not None else caller.owner
    which = key if key is not None else (caller.key_id if owner is None else None)
    return await chief.budgets(owner=who, key=which if which != "dev" else None)


@router.put(
    "/budgets/{scope}",
    summary="Set limits for your owner or one of your keys",
    responses={**_FORBIDDEN, **_NO_KEY, **CONFLICT},
)
async def set_budget(
    scope: Literal["owner", "key"], body: BudgetLimits, caller: CallerDep, chief: ChiefDep
) -> dict[str, Any]:
    """Replaces the limits of that owner or key. Limits the operator set cannot be changed
    here (409 `budget_locked`) unless the key is an admin key."""
    subject = await _subject(caller, chief, scope, body.subject)
    return await chief.set_budget(
        scope,
        subject,
        daily_usd=body.daily_usd,
        monthly_usd=body.monthly_usd,
        enforcement=body.enforcement,
        on_exceed=body.on_exceed,
        by_owner=not caller.admin,
    )


@router.delete(
    "/budgets/{scope}",
    summary="Remove the limits you set",
    responses={**_FORBIDDEN, **_NO_KEY, **CONFLICT},
)
async def delete_budget(
    scope: Literal["owner", "key"],
    caller: CallerDep,
    chief: ChiefDep,
    subject: str | None = Query(None, max_length=64, description="As for PUT."),
) -> dict[str, Any]:
    """Your plan's limits stay: they are the operator's."""
    subject_id = await _subject(caller, chief, scope, subject)
    removed = await chief.clear_budget(scope, subject_id, by_owner=not caller.admin)
    return {"scope": scope, "subject": subject_id, "deleted": int(removed)}
