"""The A2A agent on the REST app: the public agent card and the JSON-RPC endpoint.

``GET /.well-known/agent-card.json`` describes the agent (its endpoint URL taken from the
request, so it is right behind any host name or proxy); ``POST /a2a`` serves the A2A 1.0
JSON-RPC methods (``SendMessage``, ``SendStreamingMessage``, ``GetTask``, ``CancelTask``,
``SubscribeToTask``) and their v0.3 names. Calls authenticate with the REST API's keys
and limits (:func:`crewchief.api.deps.get_caller`); the caller's owner scopes every task.
Neither route is part of the OpenAPI document. The A2A side itself lives in
:mod:`crewchief.interop.a2a`.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import JSONResponse, Response

from crewchief.api.deps import CallerDep
from crewchief.api.errors import ApiError

if TYPE_CHECKING:
    from crewchief.client.facade import Crewchief

# The A2A card's paths, repeated here so that importing this module loads no A2A code.
CARD_PATH = "/.well-known/agent-card.json"
RPC_PATH = "/a2a"


def install(app: FastAPI) -> None:
    """Add the agent card and the JSON-RPC endpoint to ``app`` (built by ``create_app``)."""
    state: dict[str, Any] = {}

    def chief() -> Crewchief:
        running = getattr(app.state, "chief", None)
        if running is None:
            raise ApiError(503, "not_ready", "the service is starting or stopping")
        return running

    def dispatcher() -> Any:
        """The SDK's JSON-RPC dispatcher, built on first use (the A2A SDK loads then)."""
        if "dispatcher" not in state:
            from a2a.server.routes.jsonrpc_dispatcher import JsonRpcDispatcher

            from crewchief.api.routes.operations import check_workspace, library_rule
            from crewchief.interop.a2a import request_handler

            handler = request_handler(
                chief,
                app.state.settings,
                workspace_rule=library_rule(check_workspace, app.state.settings),
            )
            state["handler"] = handler
            state["dispatcher"] = JsonRpcDispatcher(
                handler, context_builder=_context_builder(), enable_v0_3_compat=True
            )
        return state["dispatcher"]

    router = APIRouter(include_in_schema=False)

    @router.get(CARD_PATH)
    async def agent_card(request: Request) -> Response:
        from a2a.server.request_handlers.response_helpers import agent_card_to_dict

        from crewchief.interop.a2a import agent_card as build

        url = str(request.base_url).rstrip("/") + RPC_PATH
        card = build(app.state.settings, url, auth=bool(app.state.auth))
        return JSONResponse(agent_card_to_dict(card), headers={"Cache-Control": "no-cache"})

    @router.post(RPC_PATH)
    async def rpc(request: Request, caller: CallerDep) -> Response:
        chief()  # 503 while starting or stopping, before the SDK answers anything
        request.state.a2a_caller = caller
        return await dispatcher().handle_requests(request)

    app.include_router(router)
    _close_on_shutdown(app, state)


def _context_builder() -> Any:
    """The SDK's call context, its user the API's caller (set by the endpoint)."""
    from a2a.server.routes.common import DefaultServerCallContextBuilder

    from crewchief.interop.a2a import A2ACaller

    class CallerContext(DefaultServerCallContextBuilder):
        def build_user(self, request: Any) -> Any:
            caller = request.state.a2a_caller
            return A2ACaller(owner=caller.owner, key_id=caller.key_id)

    return CallerContext()


def _close_on_shutdown(app: FastAPI, state: dict[str, Any]) -> None:
    """Drain the handler's tasks before the app's own shutdown closes the Crewchief."""
    inner = app.router.lifespan_context

    @contextlib.asynccontextmanager
    async def lifespan(app_: FastAPI) -> AsyncIterator[Any]:
        async with inner(app_) as value:
            try:
                yield value
            finally:
                handler = state.pop("handler", None)
                state.pop("dispatcher", None)
                if handler is not None:
                    await handler.aclose()

    app.router.lifespan_context = lifespan
