"""``/v1/credentials``: the caller's owner's own provider credentials ("bring your own key"):
store or replace one, list them, delete one. The owner is the API key's, as for
``/v1/profile``. A key goes in and never comes out: no answer, log line or error holds it."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from crewchief.api.deps import CallerDep, ChiefDep
from crewchief.api.errors import ERROR_RESPONSES, ApiError, ErrorResponse
from crewchief.errors import InvalidRequest

router = APIRouter(prefix="/v1", tags=["credentials"], responses=ERROR_RESPONSES)

ProviderPath = Annotated[
    str,
    Path(
        min_length=1,
        max_length=64,
        description="A provider name of type openai or google: `openai`, `google`, or a"
        " `[providers.NAME]` of the server's settings.",
    ),
]
_UNAVAILABLE = {
    503: {
        "model": ErrorResponse,
        "description": "`credentials_unavailable`: the server has no `secret_keys` to encrypt"
        " credentials with.",
    }
}


class CredentialPut(BaseModel):
    """Your API key for the provider, and for an OpenAI-compatible one, your own server."""

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr = Field(
        description="The provider's API key: stored encrypted, used for your calls to the"
        " provider's models, never shown again (only its fingerprint)."
    )
    base_url: str | None = Field(
        None,
        description="OpenAI-compatible providers only: where your requests go instead of the"
        " provider's URL, e.g. `https://my-proxy.example.com/v1`.",
    )


class CredentialPublic(BaseModel):
    """A stored credential as it is shown: never the key."""

    provider: str
    base_url: str | None = Field(description="Your server, or null: the provider's own.")
    fingerprint: str = Field(
        description="What you recognise the key by: its last 4 characters (`…3f9a`), or a"
        " short hash of a short key."
    )
    created_at: datetime
    updated_at: datetime


class CredentialList(BaseModel):
    owner: str | None = Field(description="Whose credentials these are.")
    items: list[CredentialPublic]


class CredentialDeleted(BaseModel):
    owner: str | None = Field(description="The owner whose credential was deleted.")
    provider: str
    deleted: int = Field(description="Credentials deleted: 1, or 0 when there was none.")


def _public(row: object) -> CredentialPublic:
    return CredentialPublic.model_validate(row, from_attributes=True)


def _refused(exc: InvalidRequest) -> ApiError:
    """The facade's refusal, with each field's place in the request (the provider is in
    the path, the rest in the body)."""
    details = [
        {**d, "path": ("path." if d["path"] == "provider" else "body.") + d["path"]}
        for d in exc.details
    ]
    first = details[0] if details else {"path": "body", "message": str(exc)}
    return ApiError(422, "invalid_request", f"{first['path']}: {first['message']}", details)


@router.put(
    "/credentials/{provider}",
    summary="Store your API key for a provider",
    response_model=CredentialPublic,
    responses=_UNAVAILABLE,
)
async def put_credential(
    provider: ProviderPath, body: CredentialPut, caller: CallerDep, chief: ChiefDep
) -> CredentialPublic:
    """Your gateway requests and operations then call the provider's models with your key
    (and `base_url`), and their ledger rows say `paid_by: owner`. Replaces the one stored
    before; a change reaches every server within seconds."""
    try:
        row = await chief.set_credential(
            caller.owner, provider, body.api_key, base_url=body.base_url
        )
    except InvalidRequest as exc:
        raise _refused(exc) from None
    return _public(row)


@router.get(
    "/credentials",
    summary="Your stored credentials (never the keys)",
    response_model=CredentialList,
)
async def list_credentials(caller: CallerDep, chief: ChiefDep) -> CredentialList:
    """Provider, base URL, fingerprint and dates of each."""
    rows = await chief.credentials(caller.owner)
    return CredentialList(owner=caller.owner, items=[_public(r) for r in rows])


@router.delete(
    "/credentials/{provider}",
    summary="Delete your credential for a provider",
    response_model=CredentialDeleted,
)
async def delete_credential(
    provider: ProviderPath, caller: CallerDep, chief: ChiefDep
) -> CredentialDeleted:
    """Your calls to the provider's models go out with the service's credentials again
    (within seconds on every server). `DELETE /v1/memory` leaves credentials alone."""
    deleted = await chief.delete_credential(caller.owner, provider)
    return CredentialDeleted(owner=caller.owner, provider=provider, deleted=deleted)
