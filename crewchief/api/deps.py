"""Dependencies of the routes: the open Crewchief, the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crewchief.api.auth import (
    DEV_CALLER,
    Caller,
    FailureLimiter,
    KeyCache,
    bearer_secret,
    client_address,
)
from crewchief.api.errors import ApiError
from crewchief.client.facade import Crewchief
from crewchief.config import Settings

_bearer = HTTPBearer(
    auto_error=False,
    description="An API key from `crewchief keys create`: `Authorization: Bearer cc_...`.",
)


# Dependencies are ``async def`` even when they do not await: FastAPI runs plain
# ``def`` dependencies in a thread pool, a round trip per request.
async def get_chief(request: Request) -> Crewchief:
    chief = getattr(request.app.state, "chief", None)
    if chief is None:
        raise ApiError(503, "not_ready", "the service is starting or stopping")
    return chief


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Caller:
    """The caller, from its bearer key (or the dev-mode caller); takes a rate-limit token.

    Failures are limited per client address: a request with no usable key, or one
    that needs a lookup, takes a token from the address's failure bucket first (a
    valid key gives it back), so an address that failed too often gets 429 without
    a database round trip.
    """
    state = request.app.state
    if not state.auth:
        await state.limiter.check(DEV_CALLER.key_id)
        return DEV_CALLER
    failures: FailureLimiter = state.auth_failures
    address = client_address(request.client)
    try:
        header = request.headers.get("authorization")
        secret = credentials.credentials.strip() if credentials else bearer_secret(header)
    except ApiError:
        failures.charge(address)
        raise
    keys: KeyCache = state.keys
    info = keys.cached(secret)
    if info is None:
        # A lookup of the same secret already under way was charged for: join it. So a
        # burst of requests with a valid key whose cache entry just expired is not taken
        # for a burst of failures.
        joining = keys.in_flight(secret)
        if not joining:
            failures.charge(address)
        info = await keys.lookup(secret)
        if info is None:
            if joining:
                failures.charge(address)  # a failure all the same
            raise ApiError(
                401,
                "unauthorized",
                "unknown or revoked API key",
                headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
            )
        if not joining:
            failures.give_back(address)
    settings: Settings = state.settings
    tier = info.tier or settings.default_plan
    plan = settings.plans.get(tier) if tier else None
    await state.limiter.check(info.id, plan.rate_limit_per_minute if plan else None)
    admin = plan is not None and plan.admin
    return Caller(key_id=info.id, owner=info.owner, name=info.name, tier=tier, admin=admin)


ChiefDep = Annotated[Crewchief, Depends(get_chief)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CallerDep = Annotated[Caller, Depends(get_caller)]
