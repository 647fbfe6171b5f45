"""Request ids, request metrics and ``/metrics``.

:class:`Observe` is pure ASGI middleware (cheaper than Starlette's
``BaseHTTPMiddleware``): it gives each request an id (the client's
``X-Request-ID`` when it sends a sane one), puts it in the logging context and
on the response, and counts the request by route template and status.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from fastapi import APIRouter, Request, Response

from crewchief import logs, metrics

_MAX_ID = 128
# Label values must stay few: any other method a client makes up counts as "other".
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
log = logging.getLogger(__name__)


def _request_id(scope: dict) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            if 0 < len(text) <= _MAX_ID and text.isprintable() and " " not in text:
                return text
            break
    return uuid.uuid4().hex


class Observe:
    """Request id and request metrics for every HTTP request."""

    def __init__(self, app: Any):
        self.app = app
        self.metrics = metrics.get()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = _request_id(scope)
        method = scope["method"] if scope["method"] in _METHODS else "other"
        token = logs.request_id.set(rid)
        start = time.perf_counter()
        status = 500
        header = (b"x-request-id", rid.encode())

        async def send_with_id(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = {**message, "headers": [*message.get("headers", ()), header]}
                self.metrics.http_duration.labels(method, _route(scope)).observe(
                    time.perf_counter() - start
                )
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            self.metrics.http_requests.labels(method, _route(scope), str(status)).inc()
            logs.request_id.reset(token)


def _route(scope: dict) -> str:
    """The matched route's template (``/v1/operations/{operation_id}``), never the raw path."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    summary="Prometheus metrics (text exposition format)",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "The metrics."}},
)
async def prometheus_metrics(request: Request) -> Response:
    chief = request.app.state.chief
    stats = None
    if chief is not None:
        try:
            stats = await chief.cluster_stats()
        except Exception as exc:  # noqa: BLE001 - the process's own metrics are still worth it
            log.warning("/metrics: cannot read the cluster gauges: %s", exc)
    return Response(metrics.exposition(stats), media_type=metrics.CONTENT_TYPE)
