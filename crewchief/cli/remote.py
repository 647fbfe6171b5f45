"""HTTP client of a remote crewchief service: operations and their resumable event stream.

Imports only the standard library and :mod:`crewchief.events` at module level:
:mod:`httpx` (which pulls in rich) and the pydantic read models load when first used.

:meth:`Remote.events` follows ``GET /v1/operations/{id}/events`` and, when the
connection drops (or the stream closes before the terminal event), reconnects
with ``Last-Event-ID`` set to the last ``seq`` seen, so every stored event is
yielded once, in order. It gives up after ``retry_window`` seconds without
getting through.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crewchief.events import Event, EventType

DEFAULT_SERVER = "http://127.0.0.1:8000"
# Seconds of failed reconnects before giving up on an event stream.
RETRY_WINDOW = 30.0
# A stream quiet for this long is presumed dead (the server's heartbeat is 15 s by default).
READ_TIMEOUT = 45.0
# Statuses worth reconnecting after: rate limited, server restarting or behind a proxy.
_RETRYABLE = frozenset({429, 502, 503, 504})
_MAX_PAGE = 100

if TYPE_CHECKING:
    import httpx


class RemoteError(Exception):
    """The server answered with an error: ``{"error": {"code", "message"}}``."""

    def __init__(self, status: int, code: str, message: str, retry_after: float | None = None):
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class Unauthorized(RemoteError):
    """401: the API key is missing, unknown or revoked."""


class Unreachable(Exception):
    """The server could not be reached (or the event stream could not be resumed)."""

    def __init__(self, url: str, reason: str):
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class SSEParser:
    """Server-sent events, line by line: :meth:`feed` returns a message at each blank line."""

    def __init__(self) -> None:
        self.retry: int | None = None
        self._reset()

    def _reset(self) -> None:
        self._id: str | None = None
        self._event: str | None = None
        self._data: list[str] = []

    def feed(self, line: str) -> dict[str, Any] | None:
        """One line without its end; a message ``{"id", "event", "data"}`` or None."""
        if line == "":
            message = None
            if self._data:
                message = {
                    "id": self._id,
                    "event": self._event or "message",
                    "data": "\n".join(self._data),
                }
            self._reset()
            return message
        if line.startswith(":"):
            return None  # a comment: the server's keep-alive
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\x00" not in value:
            self._id = value
        elif name == "retry" and value.isdigit():
            self.retry = int(value)
        return None


def to_event(message: dict[str, Any]) -> Event | None:
    """The :class:`Event` an SSE message carries; None for types this client does not know."""
    data = json.loads(message["data"])
    try:
        type_ = EventType(data.get("type") or message["event"])
    except ValueError:
        return None
    created = data.get("created_at")
    return Event(
        operation_id=data["operation_id"],
        type=type_,
        payload=data.get("payload") or {},
        seq=data.get("seq"),
        created_at=datetime.fromisoformat(created) if created else datetime.now(UTC),
    )


def _reason(exc: Exception) -> str:
    import httpx

    text = str(exc).strip()
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out ({text})" if text else "timed out"
    return text or type(exc).__name__


def _error(response: httpx.Response) -> RemoteError:
    try:
        body = response.json()["error"]
        code, message = str(body["code"]), str(body["message"])
    except (ValueError, KeyError, TypeError):
        code = f"http_{response.status_code}"
        message = (
            f"{response.reason_phrase} from {response.request.method} {response.request.url}"
            " (not a crewchief error; is the --server URL right?)"
        )
    retry_after = response.headers.get("retry-after")
    wait = float(retry_after) if retry_after and retry_after.isdigit() else None
    cls = Unauthorized if response.status_code == 401 else RemoteError
    return cls(response.status_code, code, message, wait)


class _Resume:
    """Where an event stream is (last seq seen) and how long it has failed to get through."""

    def __init__(self, after: int, url: str, window: float):
        self.last = after
        self.ended = False
        self.url = url
        self.window = window
        self.failing_since: float | None = None
        self.delay = 0.25

    def progress(self) -> None:
        self.failing_since = None
        self.delay = 0.25

    async def backoff(self, reason: str, wait: float | None = None) -> None:
        now = time.monotonic()
        if self.failing_since is None:
            self.failing_since = now
        left = self.window - (now - self.failing_since)
        if left <= 0:
            raise Unreachable(
                self.url,
                f"lost the event stream and could not resume it within {self.window:g} s"
                f" (last event {self.last}): {reason}",
            )
        await asyncio.sleep(min(wait or self.delay, left))
        self.delay = min(self.delay * 2, 5.0)


class Remote:
    """A crewchief service at ``url``, called with ``api_key``."""

    def __init__(
        self,
        url: str,
        api_key: str | None = None,
        *,
        read_timeout: float = READ_TIMEOUT,
        retry_window: float = RETRY_WINDOW,
        timeout: float = 30.0,
    ):
        self.url = url.rstrip("/")
        self.read_timeout = read_timeout
        self.retry_window = retry_window
        self.connections = 0  # event-stream connections opened: 1 + reconnects
        self.duplicates = 0  # stored events the server sent again (dropped here)
        headers = {"Accept": "application/json", "User-Agent": "crewchief-cli"}
        if api_key:
            headers["Authorization"] = f"Bearer {api_key}"
        import httpx

        self._timeout = httpx.Timeout(timeout, connect=min(timeout, 10.0))
        self._client = httpx.AsyncClient(base_url=self.url, headers=headers, timeout=self._timeout)

    async def __aenter__(self) -> Remote:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, *, text: bool = False, **kwargs: Any) -> Any:
        import httpx

        try:
            response = await self._client.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise Unreachable(self.url, _reason(exc)) from exc
        if response.status_code >= 400:
            raise _error(response)
        if text:
            return response.text
        try:
            return response.json()
        except ValueError:
            raise RemoteError(
                response.status_code,
                "bad_response",
                f"{method} {path} did not answer JSON; is {self.url} a crewchief service?",
            ) from None

    # -- operations ------------------------------------------------------------------------

    async def create(
        self, request: str, *, workspace: str | None = None, route: str | None = None
    ) -> dict[str, Any]:
        """``POST /v1/operations``: ``{id, status, links}`` of the started operation."""
        body: dict[str, Any] = {"request": request}
        if workspace is not None:
            body["workspace"] = workspace
        if route is not None:
            body["route"] = route
        return await self._call("POST", "/v1/operations", json=body)

    async def get(self, operation_id: str, *, events: bool = False) -> Any:
        """The operation as an :class:`~crewchief.results.OperationResult`."""
        from crewchief.results import OperationResult

        params = {"events": "true"} if events else None
        data = await self._call("GET", f"/v1/operations/{_quote(operation_id)}", params=params)
        return OperationResult.model_validate(data)

    async def list(self, *, limit: int = 20, **filters: str | None) -> list[Any]:
        """Up to ``limit`` :class:`~crewchief.results.OperationSummary`, newest first.

        ``filters``: ``GET /v1/operations``'s (``status``, ``route``, ``key``, ``since``,
        ``until``, ``q``); those that are None are left out.
        """
        from crewchief.results import OperationSummary

        items: list[Any] = []
        cursor = None
        wanted = {name: value for name, value in filters.items() if value}
        while len(items) < limit:
            params: dict[str, Any] = {"limit": min(limit - len(items), _MAX_PAGE), **wanted}
            if cursor:
                params["cursor"] = cursor
            page = await self._call("GET", "/v1/operations", params=params)
            items.extend(OperationSummary.model_validate(i) for i in page["items"])
            cursor = page.get("next_cursor")
            if not cursor:
                break
        return items

    async def cancel(self, operation_id: str) -> Any:
        """``POST .../cancel`` (idempotent): the operation afterwards."""
        from crewchief.results import OperationResult

        data = await self._call("POST", f"/v1/operations/{_quote(operation_id)}/cancel")
        return OperationResult.model_validate(data)

    # -- the caller's profile ----------------------------------------------------------------

    async def profile(self) -> dict[str, Any]:
        """``GET /v1/profile``: the API key owner's profile."""
        return await self._call("GET", "/v1/profile")

    async def set_profile(self, fields: dict[str, Any], *, merge: bool = True) -> dict[str, Any]:
        """``PATCH /v1/profile`` (or ``PUT`` without ``merge``): the profile after."""
        return await self._call("PATCH" if merge else "PUT", "/v1/profile", json=fields)

    async def delete_profile(self) -> dict[str, Any]:
        """``DELETE /v1/profile``: ``{owner, deleted}``."""
        return await self._call("DELETE", "/v1/profile")

    # -- the caller's provider credentials ---------------------------------------------------

    async def set_credential(
        self, provider: str, api_key: str, base_url: str | None = None
    ) -> dict[str, Any]:
        """``PUT /v1/credentials/{provider}``: the stored credential (never the key)."""
        body = {"api_key": api_key, "base_url": base_url}
        return await self._call("PUT", f"/v1/credentials/{_quote(provider)}", json=body)

    async def credentials(self) -> dict[str, Any]:
        """``GET /v1/credentials``: ``{owner, items}``."""
        return await self._call("GET", "/v1/credentials")

    async def delete_credential(self, provider: str) -> dict[str, Any]:
        """``DELETE /v1/credentials/{provider}``: ``{owner, provider, deleted}``."""
        return await self._call("DELETE", f"/v1/credentials/{_quote(provider)}")

    # -- usage -----------------------------------------------------------------------------

    async def usage(self, **query: Any) -> Any:
        """``GET /v1/usage`` with ``query`` (None values left out; ``group_by`` a list) as
        a :class:`~crewchief.results.UsageReport`."""
        from crewchief.results import UsageReport

        params = {k: v for k, v in query.items() if v is not None and v != []}
        return UsageReport.model_validate(await self._call("GET", "/v1/usage", params=params))

    # -- feedback --------------------------------------------------------------------------

    async def rate(self, target: str, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /v1/<target>/feedback`` (``operations/ID``, ``operations/ID/tasks/N``,
        ``responses/ID``): the rating stored, with ``replaced``."""
        return await self._call("POST", f"/v1/{target}/feedback", json=body)

    async def feedback(self, what: str = "", **query: Any) -> Any:
        """``GET /v1/feedback`` (``what``: ``/summary``, ``/export``) with ``query`` (None
        values left out): JSON, or the export's JSON Lines as text."""
        params = {k: v for k, v in query.items() if v is not None}
        return await self._call("GET", f"/v1/feedback{what}", params=params, text=what == "/export")

    # -- events ----------------------------------------------------------------------------

    async def events(
        self, operation_id: str, *, after: int = 0, deltas: bool = True
    ) -> AsyncIterator[Event]:
        """The operation's events with ``seq > after``, live, until its terminal event.

        Ends without a terminal event when the server answers 204 (the operation
        ended and there is nothing newer). Reconnects with ``Last-Event-ID`` on a
        dropped connection; raises :class:`Unreachable` after ``retry_window``
        seconds of failing to, and :class:`RemoteError` on errors not worth retrying.
        """
        import httpx

        state = _Resume(after, self.url, self.retry_window)
        while True:
            wait = None
            try:
                async with contextlib.aclosing(self._connect(operation_id, state, deltas)) as it:
                    async for event in it:
                        yield event
                        if event.terminal:
                            return
                if state.ended:
                    return
                reason = "the stream closed before the operation ended"
            except httpx.TransportError as exc:
                reason = _reason(exc)
            except RemoteError as exc:
                if exc.status not in _RETRYABLE:
                    raise
                reason, wait = str(exc), exc.retry_after
            await state.backoff(reason, wait)

    async def _connect(
        self, operation_id: str, state: _Resume, deltas: bool
    ) -> AsyncIterator[Event]:
        import httpx

        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if state.last:
            headers["Last-Event-ID"] = str(state.last)
        params = None if deltas else {"deltas": "false"}
        timeout = httpx.Timeout(self._timeout.connect or 10.0, read=self.read_timeout)
        path = f"/v1/operations/{_quote(operation_id)}/events"
        self.connections += 1
        async with self._client.stream(
            "GET", path, headers=headers, params=params, timeout=timeout
        ) as response:
            if response.status_code == 204:
                state.ended = True
                return
            if response.status_code >= 400:
                await response.aread()
                raise _error(response)
            parser = SSEParser()
            async for line in response.aiter_lines():
                message = parser.feed(line)
                if message is None:
                    continue
                state.progress()
                event = to_event(message)
                if event is None:
                    continue
                if event.seq is not None:
                    if event.seq <= state.last:
                        self.duplicates += 1  # already yielded; the server should not resend
                        continue
                    state.last = event.seq
                yield event


def _quote(operation_id: str) -> str:
    from urllib.parse import quote

    return quote(operation_id, safe="")


def fail(message: str, code: int = 2) -> int:
    """Print ``error: message`` on stderr; the exit code (2: a usage error)."""
    import sys

    print(f"error: {message}", file=sys.stderr)
    return code


def call_server(
    args: Any,
    server: str,
    call: Callable[[Remote], Awaitable[Any]],
    show: Callable[[Any], int],
) -> int:
    """``call`` against a crewchief service with the key of ``--api-key`` (or
    ``CREWCHIEF_API_KEY``), then ``show`` its result; a server that cannot be reached or
    refuses becomes a message and an exit code (2 for the caller's mistakes, 1 otherwise)."""
    import os

    if not server.startswith(("http://", "https://")):
        return fail(f"--server: expected an http:// or https:// URL, got {server!r}")

    async def work() -> Any:
        api_key = getattr(args, "api_key", None) or os.environ.get("CREWCHIEF_API_KEY") or None
        async with Remote(server, api_key) as remote:
            return await call(remote)

    try:
        return show(asyncio.run(work()))
    except Unreachable as exc:
        return fail(f"cannot reach the crewchief server at {exc.url}: {exc.reason}", 1)
    except RemoteError as exc:
        return fail(
            f"{exc.code}: {exc.message}", 2 if exc.status in (400, 401, 403, 413, 422) else 1
        )
