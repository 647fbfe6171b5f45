"""The OpenAI-compatible gateway: ``/v1/chat/completions``, ``/v1/models``, ``/v1/embeddings``.

Point an OpenAI client (the ``openai`` SDK, an editor agent) at ``<server>/v1`` with a
crewchief API key. Errors come in OpenAI's shape.
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from crewchief.api.deps import CallerDep, get_caller
from crewchief.api.errors import ApiError
from crewchief.api.streaming import ClosingStreamingResponse
from crewchief.config import ALIASES
from crewchief.gateway.errors import GatewayError
from crewchief.gateway.request import parse_chat_request
from crewchief.gateway.roles import MODEL_PREFIX, ROLES, choose_role
from crewchief.gateway.service import Gateway

router = APIRouter(prefix="/v1", tags=["gateway"])


class OpenAIErrorInfo(BaseModel):
    message: str
    type: str = Field(..., description="`invalid_request_error`, `authentication_error`, ...")
    param: str | None = Field(None, description="The request field at fault, e.g. `model`.")
    code: str | None = Field(None, description="Stable: `model_not_found`, `upstream_error`...")


class OpenAIError(BaseModel):
    error: OpenAIErrorInfo


def _error(description: str, **extra: Any) -> dict[str, Any]:
    return {"model": OpenAIError, "description": description, **extra}


_RETRY_AFTER = {"Retry-After": {"schema": {"type": "integer"}}}
_CHAT_ERRORS: dict[int | str, dict[str, Any]] = {
    400: _error("The body is not valid JSON, or a field is invalid (`param` names it)."),
    401: _error("Missing, unknown or revoked API key."),
    402: _error("A hard budget of the key or its owner is exhausted (`budget_exceeded`);"
                " `limit_usd`, `spent_usd` and `resets_at` are in the error."),
    403: _error("The key's plan allows none of the route's models (`model_not_allowed`)."),
    404: _error("Unknown model name: not a role, `auto`, an alias or a model spec."),
    413: _error("The request body is too large."),
    429: _error("Rate limit exceeded (this key's, or every model's), or the plan's daily"
                " quota (`quota_exceeded`).", headers=_RETRY_AFTER),
    502: _error("Every model failed; the message names each failure."),
    503: _error("Every model's circuit is open, or real model requests are off.",
                headers=_RETRY_AFTER),
}  # fmt: skip


def _body_doc(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    """An ``openapi_extra`` documenting a JSON object body (the route reads it itself)."""
    schema = {"type": "object", "required": required, "properties": properties}
    content = {"application/json": {"schema": {**schema, "additionalProperties": True}}}
    return {"requestBody": {"required": True, "content": content}}


def _header_doc(name: str, description: str) -> dict[str, Any]:
    schema = {"title": name, "type": "string"}
    return {"name": name.lower(), "in": "header", "required": False, "schema": schema,
            "description": description}  # fmt: skip


_CHAT_BODY = _body_doc(
    ["model", "messages"],
    {
        "model": {"type": "string", "description": "A role, `auto`, an alias or a model spec."},
        "messages": {"type": "array", "items": {"type": "object"}, "minItems": 1},
        "stream": {"type": "boolean"},
        "role": {"type": "string", "description": "The role this request plays."},
    },
)
# The chat route reads its key and headers itself (see :func:`chat_completions`): these
# document them as FastAPI would.
_CHAT_HEADERS = {
    "security": [{"HTTPBearer": []}],
    "parameters": [
        _header_doc("X-Crewchief-Role", "The role this request plays (after the body's `role`)."),
        _header_doc("X-Crewchief-Conversation", "The conversation (after `conversation_id`)."),
        _header_doc("X-Crewchief-Rewrite", "`false` to send the prompt as written."),
    ],
}
_EMBEDDINGS_BODY = _body_doc(
    ["input"],
    {"input": {"oneOf": [{"type": "string"}, {"type": "array"}]}, "model": {"type": "string"}},
)


async def get_gateway(request: Request) -> Gateway:
    gateway = getattr(request.app.state, "gateway", None)
    if gateway is None:
        raise ApiError(503, "not_ready", "the service is starting or stopping")
    return gateway


GatewayDep = Annotated[Gateway, Depends(get_gateway)]


async def _json_body(request: Request) -> Any:
    raw = await request.body()
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise GatewayError(
            400, f"the body is not valid JSON: {exc}", code="invalid_json", param="body"
        ) from None


@router.post(
    "/chat/completions",
    summary="Chat completion (OpenAI-compatible), routed by role",
    response_model=None,
    responses={
        200: {
            "description": "A `chat.completion` with `x_crewchief`, or an event stream of"
            " `chat.completion.chunk`s whose last one carries `x_crewchief`.",
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "text/event-stream": {"schema": {"type": "string"}},
            },
        },
        **_CHAT_ERRORS,
    },
    openapi_extra={**_CHAT_BODY, **_CHAT_HEADERS},
)
async def chat_completions(request: Request) -> Response:
    """OpenAI's chat completion request; the gateway's own fields are `role`,
    `conversation_id`, `profile` and `x_crewchief`. The answer carries `x_crewchief`
    (the body, or the last chunk of a stream) and `X-Crewchief-*` headers."""
    # The key and the headers are read here, not declared as FastAPI parameters: solving
    # declared dependencies cost a fifth of the gateway's CPU per request.
    caller = await get_caller(request, None)
    gateway = await get_gateway(request)
    headers = request.headers
    x_crewchief_role = headers.get("x-crewchief-role")
    x_crewchief_conversation = headers.get("x-crewchief-conversation")
    x_crewchief_rewrite = headers.get("x-crewchief-rewrite")
    chat = parse_chat_request(await _json_body(request))
    role = choose_role(chat.role, x_crewchief_role, chat.model, chat.body["messages"])
    trace = await gateway.trace(chat, role, owner=caller.owner, api_key_id=caller.key_id)
    if chat.conversation_id is None and x_crewchief_conversation:
        if len(x_crewchief_conversation) > 128:
            raise GatewayError(
                400, "X-Crewchief-Conversation must be at most 128 characters",
                code="invalid_request", param="X-Crewchief-Conversation",
            )  # fmt: skip
        chat.conversation_id = x_crewchief_conversation
    await gateway.choose_tier(chat, trace)
    await gateway.add_context(chat, trace)
    await gateway.personalize(chat, trace)
    await gateway.recall(chat, trace)
    await gateway.engineer_prompt(
        chat, trace, wanted=_rewrite_wanted(gateway, chat.options, x_crewchief_rewrite)
    )
    await gateway.fit_window(chat, trace)
    fresh = "no-cache" in headers.get("cache-control", "").lower()
    if chat.stream:
        opened = await gateway.open_stream(chat, trace, fresh=fresh)
        return ClosingStreamingResponse(
            opened.chunks(),
            on_close=opened.finish,
            media_type="text/event-stream",
            headers={**trace.headers(), "Cache-Control": "no-cache"},
        )
    answer = await gateway.complete(chat, trace, fresh=fresh)
    return JSONResponse(answer, headers=trace.headers())


@router.post(
    "/embeddings",
    summary="Embeddings (OpenAI-compatible), forwarded to the configured embeddings model",
    response_model=None,
    responses={
        200: {"description": "OpenAI's embedding list, with `x_crewchief`."},
        **_CHAT_ERRORS,
    },
    openapi_extra=_EMBEDDINGS_BODY,
)
async def embeddings(request: Request, caller: CallerDep, gateway: GatewayDep) -> Response:
    """OpenAI's embeddings request; `model` is ignored: `gateway.embeddings_model` answers."""
    body = await _json_body(request)
    if not isinstance(body, dict):
        raise GatewayError(
            400, "the body must be a JSON object", code="invalid_request", param="body"
        )
    answer = await gateway.embeddings(body, owner=caller.owner, api_key_id=caller.key_id)
    return JSONResponse(answer)


def _rewrite_wanted(gateway: Gateway, options: dict[str, Any], header: str | None) -> bool:
    """The request's say (``x_crewchief.rewrite``, then the header), else the setting."""
    asked = options.get("rewrite")
    if isinstance(asked, bool):
        return asked
    if header is not None:
        return header.strip().lower() not in ("0", "false", "no", "off")
    return gateway.settings.gateway.rewrite


@router.get(
    "/models",
    summary="The model names the gateway answers to (OpenAI-compatible)",
    responses={401: _CHAT_ERRORS[401], 429: _CHAT_ERRORS[429]},
)
async def list_models(caller: CallerDep) -> dict[str, Any]:
    """Every role (as `crewchief/<role>`), `auto`, and the aliases."""
    created = int(time.time())
    names = [f"{MODEL_PREFIX}{role}" for role in ROLES] + ["auto", *ALIASES]
    return {
        "object": "list",
        "data": [
            {"id": name, "object": "model", "created": created, "owned_by": "crewchief"}
            for name in names
        ],
    }
