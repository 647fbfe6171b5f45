"""Every error the API returns is ``{"error": {"code", "message", "details"}}``.

Codes are stable; clients branch on ``code``, people read ``message``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from crewchief.errors import (
    BudgetExceeded,
    CredentialsUnavailable,
    CrewchiefError,
    InvalidRequest,
    NotAllowed,
    OperationNotFound,
    OperationStateError,
    ResponseNotFound,
    TaskNotFound,
)
from crewchief.gateway.errors import GatewayError, openai_error
from crewchief.gateway.spend import budget_error

log = logging.getLogger(__name__)


class ErrorDetail(BaseModel):
    path: str = Field(..., description="Where the problem is: `body.request`, `query.limit`.")
    message: str
    type: str | None = None


class ErrorInfo(BaseModel):
    code: str = Field(..., description="Stable, machine-readable: `invalid_request`, ...")
    message: str = Field(..., description="What went wrong, for people.")
    details: list[ErrorDetail] = Field(default_factory=list)


class ErrorResponse(BaseModel):
    error: ErrorInfo


class ApiError(Exception):
    """An error response: status, stable code, message, optional details and headers."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or []
        self.headers = headers


def query_error(exc: InvalidRequest) -> ApiError:
    """A refusal of the library's (naming its field) as a 422 naming the query parameter."""
    details = [{**d, "path": "query." + d["path"]} for d in exc.details]
    first = details[0] if details else {"path": "query", "message": str(exc)}
    return ApiError(422, "invalid_request", f"{first['path']}: {first['message']}", details)


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details or []}}
    return JSONResponse(body, status_code=status, headers=headers)


# Library errors and the status each maps to.
_STATUS: dict[type[CrewchiefError], int] = {
    OperationNotFound: 404,
    TaskNotFound: 404,
    ResponseNotFound: 404,
    OperationStateError: 409,
    NotAllowed: 403,
    CredentialsUnavailable: 503,  # the operator's to fix: secret_keys (the message says how)
}
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "not_ready",
}


def _path(loc: tuple | list) -> str:
    # pydantic marks a bad dict key with a trailing "[key]"; the key itself is the path.
    return ".".join(str(p) for p in loc if p != "[key]")


def _field_loc(loc: tuple | list, body: Any) -> list:
    """``loc`` without the tags pydantic inserts for a discriminated union.

    ``{"action": "edit", "tasks": []}`` fails at ``("body", "edit", "tasks")``;
    the client sent ``body.tasks``.
    """
    out, node = [loc[0]], body
    for part in loc[1:]:
        if isinstance(node, dict) and isinstance(part, str) and part not in node:
            if part in (v for v in node.values() if isinstance(v, str)):
                continue
        out.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    return out


def validation_details(errors: list[dict[str, Any]], body: Any = None) -> list[dict[str, Any]]:
    out = []
    for e in errors:
        if e.get("type") == "json_invalid":
            # loc is ("body", <offset>): say where, but keep the path a field path.
            reason = (e.get("ctx") or {}).get("error", "invalid JSON")
            where = e["loc"][1] if len(e["loc"]) > 1 else "?"
            message = f"the body is not valid JSON: {reason} at character {where}"
            out.append({"path": "body", "message": message, "type": "json_invalid"})
            continue
        loc = _field_loc(e["loc"], body) if tuple(e["loc"][:1]) == ("body",) else e["loc"]
        out.append({"path": _path(loc), "message": e["msg"], "type": e.get("type")})
    return out


_UNPARSABLE_BODY = "There was an error parsing the body"  # FastAPI's 400 detail


def allowed_methods(request: Request) -> list[str]:
    """Every method some route answers at this path (Starlette names only the first route's)."""
    allowed = set()
    for method in ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"):
        scope = {**request.scope, "method": method}
        if any(route.matches(scope)[0] == Match.FULL for route in request.app.router.routes):
            allowed.add(method)
    return sorted(allowed)


GATEWAY_PATHS = ("/v1/chat/completions", "/v1/models", "/v1/embeddings")


def is_gateway_path(path: str) -> bool:
    return path.startswith(GATEWAY_PATHS)


def _install_gateway(app: FastAPI) -> None:
    """The gateway's routes answer in OpenAI's error shape, which OpenAI clients read."""

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        if is_gateway_path(request.url.path):
            body = openai_error(exc.status, exc.message, code=exc.code)
            return JSONResponse(body, status_code=exc.status, headers=exc.headers)
        return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)

    @app.exception_handler(GatewayError)
    async def _gateway_error(request: Request, exc: GatewayError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)


def install(app: FastAPI) -> None:
    """Register the handlers that give every error the common shape."""

    _install_gateway(app)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        details = validation_details(list(exc.errors()), exc.body)
        first = details[0] if details else {"path": "body", "message": "invalid"}
        message = f"{first['path']}: {first['message']}"
        if len(details) > 1:
            message += f" (and {len(details) - 1} more)"
        return error_response(422, "invalid_request", message, details)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
            # Not even parsable (bad UTF-8, nested too deeply): as invalid as malformed JSON.
            message = "the body is not valid JSON: it could not be parsed (bad UTF-8 or too deep)"
            details = [{"path": "body", "message": message, "type": "json_invalid"}]
            return error_response(422, "invalid_request", f"body: {message}", details)
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        headers = exc.headers
        if exc.status_code == 404 and message == "Not Found":
            message = f"no route {request.method} {request.url.path}"
        if exc.status_code == 405:
            allowed = allowed_methods(request)
            headers = {**(headers or {}), "Allow": ", ".join(allowed)}
            message = f"{request.method} is not allowed here; allowed: {', '.join(allowed)}"
        return error_response(exc.status_code, code, message, headers=headers)

    @app.exception_handler(CrewchiefError)
    async def _crewchief(request: Request, exc: CrewchiefError) -> JSONResponse:
        if isinstance(exc, BudgetExceeded):  # e.g. a gateway's context summary refused
            if is_gateway_path(request.url.path):
                refused = budget_error(exc)
                return JSONResponse(refused.body(), refused.status, headers=refused.headers)
            return budget_response(exc)
        status = next((s for t, s in _STATUS.items() if isinstance(exc, t)), None)
        if status is None:
            status = 422 if exc.code in ("invalid_request", "invalid_model") else 500
        details = getattr(exc, "details", None) or []
        details = [
            {"path": "body." + d["path"], **{k: v for k, v in d.items() if k != "path"}}
            for d in details
        ]
        message = str(exc)
        if details:
            # Named as a request validation error is: the field's path in the body.
            message = f"{details[0]['path']}: {details[0]['message']}"
            if len(details) > 1:
                message += f" (and {len(details) - 1} more)"
        if status == 500:
            log.exception("request failed: %s", exc)
        return error_response(status, exc.code, message, details)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal_error", "the server failed to handle the request")


def budget_response(exc: BudgetExceeded) -> JSONResponse:
    """402 ``budget_exceeded`` (429 ``quota_exceeded`` with ``Retry-After`` for a quota),
    with the limit, the spend and when it resets next to the message."""
    facts = exc.facts()
    body = {"error": {"code": exc.code, "message": str(exc), "details": [], **facts}}
    if exc.unit == "usd":
        return JSONResponse(body, status_code=402)
    return JSONResponse(body, status_code=429, headers={"Retry-After": str(exc.retry_after())})


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorResponse, "description": "Missing, unknown or revoked API key."},
    413: {"model": ErrorResponse, "description": "The request body is too large."},
    422: {"model": ErrorResponse, "description": "A field is invalid; `details` gives each path."},
    429: {
        "model": ErrorResponse,
        "description": "Rate limit exceeded; retry after `Retry-After` seconds.",
        "headers": {"Retry-After": {"schema": {"type": "integer"}}},
    },
}
# A route that spends: its payer's budgets, plan and quotas may refuse it.
SPENDING: dict[int | str, dict[str, Any]] = {
    402: {"model": ErrorResponse, "description": "A hard budget of the key or its owner is"
          " exhausted (`budget_exceeded`, with the limit, the spend and the reset)."},
    403: {"model": ErrorResponse, "description": "A model the key's plan does not allow."},
}  # fmt: skip
NOT_FOUND = {404: {"model": ErrorResponse, "description": "No such operation for this key."}}
CONFLICT = {
    409: {"model": ErrorResponse, "description": "The operation's status does not allow it."}
}
