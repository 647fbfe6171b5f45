"""Errors of the OpenAI-compatible gateway, in OpenAI's shape.

OpenAI clients (the ``openai`` SDK, editor agents) read
``{"error": {"message", "type", "param", "code"}}`` and map the status to their own
exception types, so the gateway's routes answer in that shape rather than the REST
API's ``{"error": {"code", "message", "details"}}``.
"""

from __future__ import annotations

from typing import Any

# OpenAI's error ``type`` per status, as its API sends them.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota",
    403: "permission_error",
    404: "invalid_request_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "api_error",
    503: "api_error",
    504: "api_error",
}


class GatewayError(Exception):
    """An error answer of the gateway.

    Args:
        status: The HTTP status.
        message: What went wrong, for people.
        code: A stable code (``model_not_found``, ``upstream_error``...).
        param: The request field at fault, as a dotted path (``messages.2.role``).
        headers: Extra response headers (``Retry-After``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.param = param
        self.headers = headers or {}
        self.extra = extra or {}  # more fields of the error object (a budget's limit...)

    def body(self) -> dict[str, Any]:
        body = openai_error(self.status, self.message, code=self.code, param=self.param)
        body["error"].update(self.extra)
        return body


def openai_error(
    status: int, message: str, *, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    """``{"error": {...}}`` as OpenAI's API sends it."""
    kind = _TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}
