"""``/mcp``: the MCP server (streamable HTTP) behind the REST API's keys and rules.

Each request is authenticated as a REST request is (the same keys, caches, failure and rate
limits; the keyless dev caller with ``--no-auth``) and answered 401 in the API's error shape
without a key. The caller then travels to the tools as a
:class:`~crewchief.interop.principal.Principal` in the request's ASGI scope; the server's
workspace roots and allowed models are the REST rules, passed in as callables.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request

from crewchief.api.deps import get_caller
from crewchief.api.errors import ApiError, error_response
from crewchief.api.routes.operations import check_models, check_workspace, library_rule
from crewchief.client.facade import Crewchief
from crewchief.config import Settings

PATH = "/mcp"


def install(app: FastAPI) -> None:
    """Route ``/mcp`` to the MCP endpoint (kept out of the OpenAPI document)."""
    app.add_route(PATH, Endpoint(app), methods=["GET", "POST", "DELETE"], include_in_schema=False)
    app.state.mcp = None


@contextlib.asynccontextmanager
async def serve(app: FastAPI, chief: Crewchief, settings: Settings) -> AsyncIterator[None]:
    """Run the MCP server on ``chief`` for as long as the app runs (its lifespan)."""
    from crewchief.interop.mcp_server import build_mcp_server, http_manager

    server = build_mcp_server(
        chief,
        principal=None,  # every request brings its own, from its key
        workspace_rule=library_rule(check_workspace, settings),
        models_rule=library_rule(check_models, settings),
    )
    manager = http_manager(server)
    stop = asyncio.Event()
    started = asyncio.get_running_loop().create_future()

    async def run() -> None:
        async with manager.run():
            started.set_result(None)
            await stop.wait()

    # The manager's task group must be left by the task that entered it: its own task, as
    # the lifespan's start and end may run in different tasks (e.g. under a test harness).
    task = asyncio.create_task(run(), name="crewchief-mcp")
    await asyncio.wait([task, started], return_when=asyncio.FIRST_COMPLETED)
    if task.done():
        task.result()  # it failed to start: raise why
    app.state.mcp = manager
    try:
        yield
    finally:
        app.state.mcp = None
        stop.set()
        await task


class Endpoint:
    """Pure ASGI: authenticate, then hand the request to the MCP session manager."""

    def __init__(self, app: FastAPI):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            caller = await get_caller(Request(scope, receive), None)
        except ApiError as exc:
            response = error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)
            await response(scope, receive, send)
            return
        manager = self.app.state.mcp
        if manager is None:
            response = error_response(503, "not_ready", "the service is starting or stopping")
            await response(scope, receive, send)
            return
        from crewchief.interop.mcp_server import PRINCIPAL_KEY
        from crewchief.interop.principal import Principal

        principal = Principal(owner=caller.owner, key_id=caller.key_id)
        await manager.handle_request({**scope, PRINCIPAL_KEY: principal}, receive, send)
