"""``DELETE /v1/memory``: the caller's owner's conversations, memories, cached answers and
profile."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from crewchief.api.deps import CallerDep, ChiefDep
from crewchief.api.errors import ERROR_RESPONSES

router = APIRouter(prefix="/v1", tags=["memory"], responses=ERROR_RESPONSES)


class Forgotten(BaseModel):
    owner: str | None = Field(description="The owner whose entries were deleted.")
    deleted: dict[str, int] = Field(
        description="Entries deleted: `conversation_messages`, `memory` (gateway exchanges),"
        " `semantic_cache`, `code_indexes` (workspaces' code search indexes),"
        " `operation_memory` (finished operations), `gateway_responses` (the answers kept to"
        " be rated), `feedback` (ratings given, and of those answers) and `profile` (1 or 0)."
    )


@router.delete(
    "/memory",
    summary="Delete what crewchief keeps of your owner beyond operations",
    response_model=Forgotten,
)
async def forget(request: Request, caller: CallerDep, chief: ChiefDep) -> Forgotten:
    """The gateway's conversations, the conversation memory, the operation memory, the
    semantic cache entries, the code search indexes, the gateway answers kept to be rated
    with their ratings, the ratings the owner gave and the profile of the API key's owner,
    vectors included, in one call. Operations themselves are not touched."""
    gateway = getattr(request.app.state, "gateway", None)
    for kept in (getattr(gateway, "memory", None), getattr(gateway, "semantic", None)):
        if kept is not None:
            await kept.settle()  # an entry being stored is deleted too
    return Forgotten(owner=caller.owner, deleted=await chief.forget(caller.owner))
