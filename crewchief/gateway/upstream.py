"""Calls to an OpenAI-compatible upstream: one shared connection pool, retries that
honour ``Retry-After``, and errors sorted into retryable and final.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Mapping
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp

from crewchief.gateway.targets import Target

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
BACKOFF_S = 0.25  # the first retry's wait; doubled for each one after, with jitter
MAX_WAIT_S = 10.0  # a longer Retry-After moves on to the next model instead of waiting
READ_BUFFER = 2**20  # a streamed line (one chunk) may be up to twice this long


class UpstreamError(Exception):
    """A failed upstream call: its status (None when no answer came), whether trying again
    may help, and how long the upstream asked to wait."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        retryable: bool = True,
        retry_after: float | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.retryable = retryable
        self.retry_after = retry_after


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _message(status: int, text: bytes, target: Target | None = None) -> str:
    """The error an upstream answered, without the key the call went out with (servers
    echo it: "Incorrect API key provided: sk-...")."""
    try:
        error = json.loads(text).get("error") or {}
        detail = error.get("message") if isinstance(error, dict) else str(error)
    except (ValueError, AttributeError):
        detail = text[:200].decode(errors="replace")
    message = f"HTTP {status}: {detail}"
    return target.scrub(message) if target is not None else message


def error_of(
    status: int, headers: Mapping[str, str], text: bytes, target: Target | None = None
) -> UpstreamError:
    return UpstreamError(
        _message(status, text, target),
        status=status,
        retryable=status in RETRYABLE_STATUS,
        retry_after=retry_after(headers),
    )


def transport_error(exc: BaseException) -> UpstreamError:
    """An :class:`UpstreamError` for a call that got no (whole) answer."""
    if isinstance(exc, TimeoutError):
        return UpstreamError(f"timed out ({type(exc).__name__})")
    return UpstreamError(f"{type(exc).__name__}: {exc}")


# What a call that got no (whole) answer raises: a lost connection, a timeout, a line
# longer than the read buffer allows.
TRANSPORT_ERRORS = (aiohttp.ClientError, TimeoutError, ValueError)


class Upstream:
    """The gateway's HTTP client for every upstream: one ``aiohttp`` session (one pool,
    keep-alive), created on first use in the serving event loop.

    ``aiohttp`` rather than ``httpx`` because the gateway's own cost is measured in
    fractions of a millisecond: with fifty concurrent upstream calls, ``httpx`` spent
    about a third of the gateway's CPU in its connection pool and ``anyio`` layers.

    Args:
        timeout: Seconds to connect, and between two reads of an answer (a stream may
            last longer than this as long as it keeps sending).
    """

    def __init__(self, timeout: float):
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=512, limit_per_host=0),
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.timeout, sock_read=self.timeout
                ),
                read_bufsize=READ_BUFFER,
                auto_decompress=True,
                raise_for_status=False,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _headers(self, target: Target) -> dict[str, str]:
        """Raises: UpstreamError (final) when the target's token cannot be had."""
        headers = {"content-type": "application/json"}
        key = target.api_key
        if target.token is not None:
            try:
                key = await target.token()
            except RuntimeError as exc:
                raise UpstreamError(str(exc), retryable=False) from None
        if key:
            headers["authorization"] = f"Bearer {key}"
        return headers

    async def post(self, target: Target, path: str, body: bytes) -> dict[str, Any]:
        """POST ``body`` (JSON) to ``target``; the JSON answer.

        Raises:
            UpstreamError: no answer, an error status, or an answer that is not JSON.
        """
        headers = await self._headers(target)
        try:
            async with self.session.post(
                target.base_url + path, data=body, headers=headers
            ) as response:
                text = await response.read()
                status, answered = response.status, response.headers
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc) from None
        if status != 200:
            raise error_of(status, answered, text, target)
        try:
            data = json.loads(text)
        except ValueError:
            raise UpstreamError("the answer is not JSON", status=200) from None
        if not isinstance(data, dict):
            raise UpstreamError("the answer is not a JSON object", status=200)
        return data

    @contextlib.asynccontextmanager
    async def stream(
        self, target: Target, path: str, body: bytes
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """An open streaming response with status 200; read its lines from ``.content``
        (a line too long for the read buffer raises ``ValueError``).

        Raises:
            UpstreamError: no answer or an error status (before anything was streamed).
        """
        headers = await self._headers(target)
        try:
            response = await self.session.post(target.base_url + path, data=body, headers=headers)
        except TRANSPORT_ERRORS as exc:
            raise transport_error(exc) from None
        try:
            if response.status != 200:
                try:
                    text = await response.read()
                except TRANSPORT_ERRORS:
                    text = b""
                raise error_of(response.status, response.headers, text, target)
            yield response
        finally:
            if response.content.at_eof():
                response.release()  # its connection goes back to the pool
            else:
                response.close()  # left mid-answer: the connection cannot be reused


def backoff(attempt: int, error: UpstreamError) -> float | None:
    """How long to wait before retrying the same model, or None to move on to the next.

    A ``Retry-After`` longer than :data:`MAX_WAIT_S` moves on: another model answers
    sooner than the one that asked to wait.
    """
    if not error.retryable:
        return None
    if error.retry_after is not None:
        return error.retry_after if error.retry_after <= MAX_WAIT_S else None
    return BACKOFF_S * (2**attempt) * (0.5 + random.random())  # noqa: S311 - jitter


async def sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)
