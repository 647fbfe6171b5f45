"""The REST service: ``create_app(settings)`` builds it, ``crewchief serve`` runs it."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI

from crewchief import dashboard
from crewchief.api import a2a, docs, errors, mcp, observe
from crewchief.api.auth import FailureLimiter, KeyCache, RateLimiter, SharedRateLimiter
from crewchief.api.hosts import LoopbackHostOnly
from crewchief.api.limits import BodySizeLimit
from crewchief.api.routes import (
    budgets,
    credentials,
    events,
    feedback,
    gateway,
    gateway_log,
    health,
    memory,
    operations,
    profile,
    search,
    usage,
)
from crewchief.client.facade import Crewchief
from crewchief.config import Settings, load_settings
from crewchief.gateway.circuit import Breakers
from crewchief.gateway.engineer import Engineer, load_strategies
from crewchief.gateway.routing import RouteBook
from crewchief.gateway.semantic import SemanticCache
from crewchief.gateway.service import Gateway, response_cache
from crewchief.gateway.upstream import Upstream

DESCRIPTION = """Start, follow, steer and cancel crewchief operations.

Every `/v1` route needs `Authorization: Bearer <key>` (create keys with `crewchief keys
create`); an operation is visible only to its key's owner. An address that fails to
authenticate too often gets 429 with `Retry-After` for a while. Errors are
`{"error": {"code", "message", "details"}}` with a stable `code`."""


def create_app(
    settings: Settings | None = None,
    *,
    auth: bool = True,
    chief: Crewchief | None = None,
) -> FastAPI:
    """Build the FastAPI app.

    Args:
        settings: Configuration (default: :func:`crewchief.load_settings`).
        auth: Require API keys. ``False`` is the keyless dev mode: every caller
            sees every operation (``crewchief serve --no-auth`` allows it on
            loopback only), and only requests addressed to a loopback host name
            (``Host: localhost``, ``127.0.0.1``, ``[::1]``) are answered.
        chief: An already open :class:`Crewchief` to serve (kept open on
            shutdown); by default the app opens its own on start-up and closes
            it on shutdown, which cancels operations still running. Its own one
            takes over the operations of a process that died (``recover=True``).
    """
    settings = settings or (chief.settings if chief else load_settings())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        own = chief is None
        running = chief or Crewchief(settings, recover=True)
        if own:
            await running.open()
        app.state.keys = KeyCache(running.verify_key)
        app.state.chief = running
        upstream = Upstream(settings.model_timeout)
        cache = response_cache(settings)
        semantic = None
        if cache is not None and settings.gateway.semantic_cache:
            store = running.vectors("semantic_cache")
            if store is not None:
                gw = settings.gateway
                semantic = SemanticCache(store, gw.semantic_threshold, gw.cache_ttl_seconds)
        app.state.gateway = Gateway(
            settings,
            upstream,
            running.record_call,
            retries=settings.gateway.retries,
            breakers=Breakers(
                settings.gateway.circuit_failures, settings.gateway.circuit_cooldown_seconds
            ),
            cache=cache,
            conversations=running.conversations(),
            routes=RouteBook(running.route_tables()),
            local_url=running.local_url,
            summarize=running.summarize,
            memory=running.memory(),
            profiles=running.profiles(),
            responses=running.responses(),
            semantic=semantic,
            budgets=running.budget_guard,
            credentials=running.credential_book(),
            engineer=Engineer(
                running.ask_fast,
                load_strategies(settings.gateway.strategies_file),
                settings.gateway.rewrite_timeout_seconds,
                cache,
                max_tokens=settings.gateway.rewrite_max_tokens,
            ),
        )
        # What startup loaded (modules, models, settings) lives as long as the process:
        # moved out of the collector's generations, full collections no longer walk it,
        # which takes milliseconds off the slowest requests.
        gc.collect()
        gc.freeze()
        try:
            async with mcp.serve(app, running, settings):
                yield
        finally:
            app.state.gateway = None
            if semantic is not None:
                await semantic.settle()
            await upstream.close()
            if cache is not None:
                await cache.close()
            app.state.chief = None
            if isinstance(app.state.limiter, SharedRateLimiter):
                await app.state.limiter.close()
            if own:
                await running.close()

    from crewchief import __version__

    app = FastAPI(
        # FastAPI's built-in OpenTelemetry hooks cost most of a millisecond of CPU per
        # operation (POST plus event stream) even with no exporter configured: off.
        telemetry={"tracing": False, "metrics": False, "logs": False},
        title="crewchief",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # Served by docs.install with local assets instead of FastAPI's CDN ones.
        docs_url=None,
        redoc_url=None,
        openapi_tags=[
            {"name": "operations", "description": "Start, read, list, cancel and steer."},
            {"name": "events", "description": "Server-sent events of one operation."},
            {"name": "health", "description": "Probes for orchestrators and load balancers."},
            {"name": "gateway", "description": "OpenAI-compatible chat completions, by role."},
            {"name": "usage", "description": "Model calls, tokens and cost, grouped."},
            {"name": "feedback", "description": "Ratings, satisfaction, preference pairs."},
            {
                "name": "credentials",
                "description": "Your own provider API keys (bring your own key).",
            },
        ],
    )
    app.state.settings = settings
    app.state.auth = auth
    app.state.chief = None
    per_minute = settings.api.rate_limit_per_minute
    app.state.limiter = (
        SharedRateLimiter(per_minute, settings.redis_url, settings.redis_prefix)
        if settings.redis_url
        else RateLimiter(per_minute)
    )
    app.state.auth_failures = FailureLimiter(settings.api.auth_failures_per_minute)
    errors.install(app)
    _document_optional_parameters_plainly(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.api.max_body_bytes)
    app.add_middleware(observe.Observe)
    if not auth:
        # Outermost: a request to a foreign host name is refused before anything else.
        app.add_middleware(LoopbackHostOnly)
    app.include_router(health.router)
    app.include_router(gateway.router)  # first: the gateway's requests are the most frequent
    app.include_router(operations.router)
    app.include_router(events.router)
    app.include_router(memory.router)
    app.include_router(profile.router)
    app.include_router(feedback.router)
    app.include_router(credentials.router)
    app.include_router(search.router)
    app.include_router(usage.router)
    app.include_router(budgets.router)
    app.include_router(gateway_log.router)
    if settings.api.metrics:
        app.include_router(observe.router)
    docs.install(app)
    dashboard.install(app)
    mcp.install(app)  # /mcp: the MCP server (streamable HTTP), with the same keys
    a2a.install(app)  # the A2A agent: its card and /a2a (JSON-RPC), with the same keys
    return app


def _document_optional_parameters_plainly(app: FastAPI) -> None:
    """Describe an optional header, query or path parameter by its type alone.

    FastAPI documents ``int | None = None`` as ``anyOf: [integer, null]``, but a
    parameter is either sent (and must be an integer) or left out; ``null`` is
    not a value it can take. Clients generated from the document, and fuzzers,
    would otherwise send the string ``null``.
    """
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()
        for item in schema.get("paths", {}).values():
            for op in item.values():
                for param in op.get("parameters", []) if isinstance(op, dict) else []:
                    _drop_null(param.get("schema", {}))
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def _drop_null(schema: dict[str, Any]) -> None:
    branches = schema.get("anyOf")
    if not branches or {"type": "null"} not in branches:
        return
    rest = [b for b in branches if b != {"type": "null"}]
    if len(rest) != 1:
        return
    del schema["anyOf"]
    schema.update({k: v for k, v in rest[0].items() if k not in schema})
    if schema.get("default", 0) is None:
        del schema["default"]


def loopback(host: str) -> bool:
    """Whether ``host`` only listens on this machine."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


__all__: list[Any] = ["create_app", "loopback"]
