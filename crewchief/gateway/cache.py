"""The gateway's exact response cache: the same request from the same owner, answered again
without a model call.

Only deterministic requests are cached (``temperature`` 0 or a ``seed``) unless the request
opts in (``x_crewchief.cache = true``) or out (``false``). The key covers the owner, the
role, the model the route starts with, and the whole request as it goes upstream
(messages, tools, sampling parameters): one owner never gets another's entry. Entries live
``gateway.cache_ttl_seconds``. ``Cache-Control: no-cache`` skips the lookup (the fresh
answer is stored). Streamed and plain requests share entries: a stream is stored whole
when it ends well, and a hit is replayed to a stream as chunks.

Where Redis is configured the entries are in Redis, shared by every API instance;
otherwise in this process (a bounded TTL cache).
"""

from __future__ import annotations

import hashlib
import json
import logging
from typing import Any, Protocol

log = logging.getLogger(__name__)
_IGNORED = ("stream", "stream_options", "user")  # not part of what the answer depends on


class ResponseCache(Protocol):
    async def get(self, key: str) -> dict[str, Any] | None: ...

    async def put(self, key: str, value: dict[str, Any]) -> None: ...

    async def close(self) -> None: ...


def cache_key(owner: str | None, role: str, model: str, body: dict[str, Any]) -> str:
    """The entry's key: a hash of who asks, in which role, of which model, for what."""
    request = {k: v for k, v in body.items() if k not in _IGNORED}
    material = json.dumps(
        [owner, role, model, request], sort_keys=True, separators=(",", ":"), default=str
    )
    return hashlib.sha256(material.encode()).hexdigest()


def cacheable(body: dict[str, Any], options: dict[str, Any]) -> bool:
    """Whether an answer to this request may be stored and reused."""
    asked = options.get("cache")
    if isinstance(asked, bool):
        return asked
    return body.get("temperature") == 0 or body.get("seed") is not None


class MemoryCache:
    """Entries in this process: at most ``size``, each for ``ttl`` seconds."""

    def __init__(self, ttl: float, size: int):
        from cachetools import TTLCache

        self._entries: TTLCache[str, str] = TTLCache(maxsize=size, ttl=ttl)

    async def get(self, key: str) -> dict[str, Any] | None:
        raw = self._entries.get(key)
        return json.loads(raw) if raw is not None else None

    async def put(self, key: str, value: dict[str, Any]) -> None:
        # Stored as text: a caller changing the answer it got cannot change the entry.
        self._entries[key] = json.dumps(value)

    async def close(self) -> None:
        self._entries.clear()


class RedisCache:
    """Entries in Redis under ``<prefix>:gateway-cache:``, shared by every API instance.

    A Redis that cannot be reached makes a miss (and a line in the log), not an error.
    """

    def __init__(self, url: str, prefix: str, ttl: float):
        self._url = url
        self._prefix = f"{prefix}:gateway-cache:"
        self._ttl = max(1, round(ttl))
        self._client: Any = None
        self._down = False

    def _redis(self) -> Any:
        if self._client is None:
            import redis.asyncio as redis

            self._client = redis.from_url(self._url, socket_connect_timeout=1, socket_timeout=1)
        return self._client

    def _failed(self, exc: Exception) -> None:
        if not self._down:
            log.warning("gateway cache: Redis unreachable, answering without it (%s)", exc)
        self._down = True

    async def get(self, key: str) -> dict[str, Any] | None:
        try:
            raw = await self._redis().get(self._prefix + key)
        except Exception as exc:  # noqa: BLE001 - a miss, not a failed request
            self._failed(exc)
            return None
        self._down = False
        return json.loads(raw) if raw is not None else None

    async def put(self, key: str, value: dict[str, Any]) -> None:
        try:
            await self._redis().set(self._prefix + key, json.dumps(value), ex=self._ttl)
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
