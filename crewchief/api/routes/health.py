"""Liveness and readiness probes (no API key needed)."""

from __future__ import annotations

from fastapi import APIRouter, Request

from crewchief.api.errors import ApiError, ErrorResponse
from crewchief.api.schemas import Health, Ready

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Ready,
    summary="The service can take operations (database reachable)",
    responses={503: {"model": ErrorResponse, "description": "Not ready; `message` says why."}},
)
async def readyz(request: Request) -> Ready:
    chief = getattr(request.app.state, "chief", None)
    if chief is None:
        raise ApiError(503, "not_ready", "the service is starting or stopping")
    try:
        await chief.services.store.read(lambda tx: tx.one("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - reported, not raised
        raise ApiError(503, "not_ready", f"database unreachable: {exc}") from None
    return Ready(status="ready", database="ok")
