"""Calls to an OpenAI-compatible upstream: one shared connection pool, retries that
honour ``Retry-After``, and errors sorted into retryable and final.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from crewchief.gateway.targets import Target

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
BACKOFF_S = 0.25  # the first retry's wait; doubled for each one after, with jitter
MAX_WAIT_S = 10.0  # a longer Retry-After moves on to the next model instead of waiting


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


def retry_after(headers: httpx.Headers) -> float | None:
    """Seconds from a ``Retry-After`` header (seconds or an HTTP date), or None."""
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import time

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _message(response: httpx.Response, text: bytes) -> str:
    try:
        error = httpx.Response(200, content=text).json().get("error") or {}
        detail = error.get("message") if isinstance(error, dict) else str(error)
    except (ValueError, AttributeError):
        detail = text[:200].decode(errors="replace")
    return f"HTTP {response.status_code}: {detail}"


def error_of(response: httpx.Response, text: bytes) -> UpstreamError:
    status = response.status_code
    return UpstreamError(
        _message(response, text),
        status=status,
        retryable=status in RETRYABLE_STATUS,
        retry_after=retry_after(response.headers),
    )


@dataclass
class Upstream:
    """The gateway's HTTP client for every upstream (one pool, keep-alive)."""

    client: httpx.AsyncClient

    @classmethod
    def create(cls, timeout: float) -> Upstream:
        limits = httpx.Limits(max_connections=512, max_keepalive_connections=128)
        return cls(httpx.AsyncClient(timeout=timeout, limits=limits))

    async def close(self) -> None:
        await self.client.aclose()

    def _headers(self, target: Target) -> dict[str, str]:
        headers = {"content-type": "application/json"}
        if target.api_key:
            headers["authorization"] = f"Bearer {target.api_key}"
        return headers

    async def post(self, target: Target, path: str, body: bytes) -> dict[str, Any]:
        """POST ``body`` (JSON) to ``target``; the JSON answer.

        Raises:
            UpstreamError: no answer, an error status, or an answer that is not JSON.
        """
        try:
            response = await self.client.post(
                target.base_url + path, content=body, headers=self._headers(target)
            )
        except httpx.TimeoutException as exc:
            raise UpstreamError(f"timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise error_of(response, response.content)
        try:
            data = response.json()
        except ValueError:
            raise UpstreamError("the answer is not JSON", status=200) from None
        if not isinstance(data, dict):
            raise UpstreamError("the answer is not a JSON object", status=200)
        return data

    @contextlib.asynccontextmanager
    async def stream(self, target: Target, path: str, body: bytes) -> AsyncIterator[httpx.Response]:
        """An open streaming response with status 200.

        Raises:
            UpstreamError: no answer or an error status (before anything was streamed).
        """
        request = self.client.build_request(
            "POST", target.base_url + path, content=body, headers=self._headers(target)
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.TimeoutException as exc:
            raise UpstreamError(f"timed out ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            raise UpstreamError(f"{type(exc).__name__}: {exc}") from None
        try:
            if response.status_code != 200:
                text = await response.aread()
                raise error_of(response, text)
            yield response
        finally:
            await response.aclose()


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
