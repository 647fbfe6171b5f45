"""``/v1/profile``: the caller's owner's profile: read it, replace or change what they
state, delete it. The owner is the API key's, as for ``DELETE /v1/memory``."""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from crewchief.api.deps import CallerDep, ChiefDep
from crewchief.api.errors import ERROR_RESPONSES
from crewchief.knowledge.profile import Profile, ProfilePatch, StatedProfile

router = APIRouter(prefix="/v1", tags=["profile"], responses=ERROR_RESPONSES)


class ProfilePublic(Profile):
    """Your profile: what you stated, what was learned from your history, and the block
    that the gateway's requests and the planner's prompts get from it."""

    model_config = ConfigDict(json_schema_extra={"title": "ProfilePublic"})

    prompt: str | None = Field(
        None, description='The "About this user" block models get; null when there is none.'
    )


class ProfileDeleted(BaseModel):
    owner: str | None = Field(description="The owner whose profile was deleted.")
    deleted: int = Field(description="Profiles deleted: 1, or 0 when there was none.")


def _public(profile: Profile) -> ProfilePublic:
    about = profile.about()
    return ProfilePublic(**profile.model_dump(), prompt=about.text if about else None)


@router.get(
    "/profile",
    summary="Your profile: stated and learned preferences",
    response_model=ProfilePublic,
)
async def read_profile(caller: CallerDep, chief: ChiefDep) -> ProfilePublic:
    """What you stated, and what was learned from what crewchief remembers of you (your
    operations and gateway requests), refreshed now, each item with its evidence count."""
    return _public(await chief.profile(caller.owner))


@router.put(
    "/profile",
    summary="Replace your stated preferences",
    response_model=ProfilePublic,
)
async def replace_profile(body: StatedProfile, caller: CallerDep, chief: ChiefDep) -> ProfilePublic:
    """Fields left out are cleared. Learned preferences are kept (they never override
    stated ones)."""
    return _public(await chief.set_profile(caller.owner, body))


@router.patch(
    "/profile",
    summary="Change some of your stated preferences",
    response_model=ProfilePublic,
)
async def change_profile(body: ProfilePatch, caller: CallerDep, chief: ChiefDep) -> ProfilePublic:
    """The fields sent replace those stored (a list replaces the whole list), `null`
    clears one, fields left out are kept."""
    return _public(await chief.set_profile(caller.owner, body, merge=True))


@router.delete(
    "/profile",
    summary="Delete your profile",
    response_model=ProfileDeleted,
)
async def delete_profile(caller: CallerDep, chief: ChiefDep) -> ProfileDeleted:
    """Stated and learned preferences. What was learned comes back from the memory unless
    it is deleted too: `DELETE /v1/memory` deletes both in one call."""
    return ProfileDeleted(owner=caller.owner, deleted=await chief.delete_profile(caller.owner))
