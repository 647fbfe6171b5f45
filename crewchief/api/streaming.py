"""A streaming response that runs a clean-up however it ends.

A stream whose resources are taken before the response starts (an event
subscription, an open upstream response) must give them back even when the client
leaves before the first chunk: the body's generator then never starts, so its own
``finally`` never runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import StreamingResponse


class ClosingStreamingResponse(StreamingResponse):
    """A :class:`StreamingResponse` that calls ``on_close`` when it ends, whatever happened."""

    def __init__(
        self, content: Any, *, on_close: Callable[[], Awaitable[None] | None], **kwargs: Any
    ):
        super().__init__(content, **kwargs)
        self._on_close = on_close

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            done = self._on_close()
            if done is not None:
                await done
