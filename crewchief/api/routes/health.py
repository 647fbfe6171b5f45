"""Liveness and readiness probes (no API key needed)."""

from __future__ import annotations

import logging

from fastapi import APIRouter

from crewchief.api.deps import ChiefDep
from crewchief.api.errors import ApiError, ErrorResponse
from crewchief.api.schemas import Health, Ready

router = APIRouter(tags=["health"])
log = logging.getLogger(__name__)


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Ready,
    summary="The service can take operations (database reachable)",
    responses={503: {"model": ErrorResponse, "description": "Not ready; `message` says why."}},
)
async def readyz(chief: ChiefDep) -> Ready:
    # ChiefDep answers 503 not_ready while the service is starting or stopping.
    try:
        await chief.ping()
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        # The driver's message may name hosts, ports and users: it goes to the log only.
        log.warning("readiness check: database unreachable: %s", exc)
        raise ApiError(503, "not_ready", "database unreachable (the server log says why)") from None
    return Ready(status="ready", database="ok")
