"""Request body size limit (413), enforced before a body is read or parsed."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from crewchief.api.errors import error_response, is_gateway_path
from crewchief.gateway.errors import openai_error


class BodySizeLimit:
    """Pure ASGI middleware: refuse bodies over ``max_bytes`` with 413.

    A declared ``Content-Length`` over the limit is refused at once; a chunked
    body is counted as it arrives and refused when it crosses the limit.
    """

    def __init__(self, app: Any, max_bytes: int):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(scope, receive, send)
                    return
                break
        seen = 0
        refused = False

        async def counting_receive() -> dict:
            nonlocal seen, refused
            message = await receive()
            if message["type"] == "http.request" and not refused:
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    # Answer 413 now; the app sees a client that went away.
                    refused = True
                    await self._refuse(scope, receive, send)
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: dict) -> None:
            if not refused:
                await send(message)

        await self.app(scope, counting_receive, guarded_send)

    async def _refuse(self, scope: dict, receive: Any, send: Any) -> None:
        message = f"the request body is larger than {self.max_bytes} bytes"
        if is_gateway_path(scope.get("path", "")):  # OpenAI clients read OpenAI's shape
            body = openai_error(413, message, code="payload_too_large")
            response: Any = JSONResponse(body, status_code=413)
        else:
            response = error_response(413, "payload_too_large", message)
        await response(scope, receive, send)
