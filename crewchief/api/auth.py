"""Who is calling: bearer API keys, short caches of known and unknown keys, rate limits.

Failed authentication (no key, a malformed one, an unknown or revoked one) is
limited per client address, so a flood of bad keys is answered 429 without
reaching the database; a key that does not have the format of the keys
``crewchief keys create`` makes never reaches it either.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from crewchief.api.errors import ApiError
from crewchief.db.keys import KEY_PREFIX, ApiKeyInfo

log = logging.getLogger(__name__)

# A verified key is trusted this long without asking the database again, so a
# key revoked with `crewchief keys revoke` stops working within this many seconds.
KEY_CACHE_SECONDS = 2.0
# An unknown (or revoked) key is refused this long without asking the database again.
# Secrets are random, so a key that is unknown now cannot become valid: only a
# key created with that very secret could, and `keys create` draws a fresh one.
UNKNOWN_KEY_SECONDS = 2.0
# Failed authentications one client address may make per minute (refilled evenly)
# before every request from it that needs a key lookup gets 429.
# Entries each cache and the failure buckets keep at most (stale ones are dropped first).
MAX_ENTRIES = 10_000

# The shape of every key `create_key` makes: the prefix and 32 random bytes, URL-safe base64.
KEY_FORMAT = re.compile(re.escape(KEY_PREFIX) + r"[A-Za-z0-9_-]{43}")


def well_formed(secret: str) -> bool:
    """Whether ``secret`` has the format of an API key (which says nothing of its validity)."""
    return KEY_FORMAT.fullmatch(secret) is not None


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller. ``owner`` scopes every operation it can see."""

    key_id: str
    owner: str | None  # the key's owner; None in keyless dev mode, which sees every owner
    name: str
    tier: str | None = None  # the key's plan (its own, else the default plan)
    admin: bool = False  # the plan lets it set other owners' budgets and read their usage

    @property
    def owner_for_new(self) -> str | None:
        return self.owner

    @property
    def scope(self) -> dict[str, str]:
        """Keyword arguments limiting a facade call to the caller's operations (``{}``: all)."""
        return {} if self.owner is None else {"owner": self.owner}

    def sees(self, owner: str | None) -> bool:
        """Whether an operation of ``owner`` is visible to this caller."""
        return self.owner is None or owner == self.owner


DEV_CALLER = Caller(key_id="dev", owner=None, name="dev mode (no keys)")


def _remember(entries: dict[str, Any], key: str, value: Any, now: float, ttl: float) -> None:
    """``entries[key] = value``, keeping at most MAX_ENTRIES: stale ones go first, then all."""
    if key not in entries and len(entries) >= MAX_ENTRIES:
        fresh = {k: v for k, v in entries.items() if now - _stamp(v) < ttl}
        entries.clear()
        if len(fresh) < MAX_ENTRIES:
            entries.update(fresh)
    entries[key] = value


def _stamp(value: Any) -> float:
    return value[0] if isinstance(value, tuple) else value


class KeyCache:
    """Keys by secret: verified ones for :data:`KEY_CACHE_SECONDS`, unknown ones for
    :data:`UNKNOWN_KEY_SECONDS`; malformed ones are refused without a lookup."""

    def __init__(self, verify: Callable[[str], Awaitable[ApiKeyInfo | None]]):
        self._verify = verify
        self._hits: dict[str, tuple[float, ApiKeyInfo]] = {}
        self._misses: dict[str, float] = {}
        # One lookup per secret at a time: requests that arrive meanwhile share its answer.
        self._inflight: dict[str, asyncio.Task[ApiKeyInfo | None]] = {}

    def in_flight(self, secret: str) -> bool:
        """Whether a lookup of this secret is under way (joining it costs no lookup)."""
        return secret in self._inflight

    def cached(self, secret: str) -> ApiKeyInfo | None:
        """The key if it was verified in the last :data:`KEY_CACHE_SECONDS`, else None."""
        hit = self._hits.get(secret)
        if hit is not None and time.monotonic() - hit[0] < KEY_CACHE_SECONDS:
            return hit[1]
        return None

    async def lookup(self, secret: str) -> ApiKeyInfo | None:
        """The active key with this secret, or None (unknown, revoked or malformed)."""
        info = self.cached(secret)
        if info is not None:
            return info
        if not well_formed(secret):
            return None
        missed = self._misses.get(secret)
        if missed is not None and time.monotonic() - missed < UNKNOWN_KEY_SECONDS:
            return None
        task = self._inflight.get(secret)
        if task is None:
            # Its own task: a caller that goes away does not cancel it for the others.
            task = self._inflight[secret] = asyncio.create_task(self._verify(secret))
            task.add_done_callback(lambda _: self._inflight.pop(secret, None))
        info = await asyncio.shield(task)
        now = time.monotonic()
        if info is None:
            self._hits.pop(secret, None)
            _remember(self._misses, secret, now, now, UNKNOWN_KEY_SECONDS)
            return None
        self._misses.pop(secret, None)
        _remember(self._hits, secret, (now, info), now, KEY_CACHE_SECONDS)
        return info


class TokenBuckets:
    """A token bucket per key: ``per_minute`` tokens, refilled evenly over the minute."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str, per_minute: int | None = None) -> int | None:
        """Take one token for ``key``: None if there was one, else the seconds until there is.
        ``per_minute``: this key's own limit (its plan's), instead of the default."""
        capacity = self.per_minute if per_minute is None else per_minute
        if capacity <= 0:
            return None
        rate = capacity / 60.0
        now = time.monotonic()
        tokens = self._tokens(key, now, capacity)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            return max(1, math.ceil((1.0 - tokens) / rate))
        if key not in self._buckets and len(self._buckets) >= MAX_ENTRIES:
            self._drop_full(now)
        self._buckets[key] = (tokens - 1.0, now)
        return None

    def give_back(self, key: str) -> None:
        """Return a token taken for ``key`` (the bucket never holds more than ``per_minute``)."""
        if self.per_minute <= 0 or key not in self._buckets:
            return
        now = time.monotonic()
        self._buckets[key] = (min(float(self.per_minute), self._tokens(key, now) + 1.0), now)

    def _tokens(self, key: str, now: float, capacity: int | None = None) -> float:
        full = float(self.per_minute if capacity is None else capacity)
        tokens, last = self._buckets.get(key, (full, now))
        return min(full, tokens + (now - last) * full / 60.0)

    def _drop_full(self, now: float) -> None:
        """Forget buckets that have refilled (they start full anyway); all if none has."""
        full = float(self.per_minute)
        kept = {k: v for k, v in self._buckets.items() if self._tokens(k, now) < full}
        self._buckets = kept if len(kept) < MAX_ENTRIES else {}


def _rate_limited(per_minute: int, wait: int) -> ApiError:
    return ApiError(
        429,
        "rate_limited",
        f"rate limit of {per_minute} requests per minute exceeded; retry in {wait} s",
        headers={"Retry-After": str(wait)},
    )


class RateLimiter(TokenBuckets):
    """Requests per API key: ``per_minute``, refilled evenly over the minute (this process)."""

    async def check(self, key: str, per_minute: int | None = None) -> None:
        """Take one token for ``key`` (``per_minute``: its plan's limit, else the default).

        Raises:
            ApiError: 429 with ``Retry-After`` when the bucket is empty.
        """
        wait = self.take(key, per_minute)
        if wait is not None:
            raise _rate_limited(self.per_minute if per_minute is None else per_minute, wait)


# One token bucket per key in a Redis hash, taken atomically: every API instance shares it.
_TAKE = """
local capacity = tonumber(ARGV[1])
local rate = capacity / 60.0
local now = redis.call('TIME')
now = tonumber(now[1]) + tonumber(now[2]) / 1000000
local bucket = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or capacity
local at = tonumber(bucket[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local wait = 0
if tokens < 1 then
  wait = math.ceil((1 - tokens) / rate)
else
  tokens = tokens - 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 61)
return wait
"""


class SharedRateLimiter:
    """Requests per API key, counted in Redis so that every API instance shares the limit.

    When Redis cannot be reached, each instance limits on its own meanwhile (a line in the
    log says so) rather than refusing every request.
    """

    def __init__(self, per_minute: int, url: str, prefix: str):
        self.per_minute = per_minute
        self._url = url
        self._prefix = f"{prefix}:ratelimit:"
        self._client: Any = None
        self._script: Any = None
        self._local = RateLimiter(per_minute)
        self._degraded = False

    async def check(self, key: str, per_minute: int | None = None) -> None:
        """Take one token for ``key`` from the shared bucket (``per_minute``: its plan's
        limit, else the default).

        Raises:
            ApiError: 429 with ``Retry-After`` when the bucket is empty.
        """
        capacity = self.per_minute if per_minute is None else per_minute
        if capacity <= 0:
            return
        try:
            if self._client is None:
                import redis.asyncio as redis

                self._client = redis.from_url(self._url, socket_connect_timeout=1, socket_timeout=1)
                self._script = self._client.register_script(_TAKE)
            wait = int(await self._script(keys=[self._prefix + key], args=[capacity]))
        except Exception as exc:  # noqa: BLE001 - limit locally until Redis is back
            if not self._degraded:
                log.warning("rate limits: Redis unavailable (%s); limiting per instance", exc)
                self._degraded = True
            await self._local.check(key, per_minute)
            return
        if self._degraded:
            log.info("rate limits: shared through Redis again")
            self._degraded = False
        if wait:
            raise _rate_limited(capacity, wait)

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


class FailureLimiter(TokenBuckets):
    """Failed authentications per client address (see :func:`client_address`).

    A request whose key must be looked up takes a token before the lookup and
    gives it back when the key turns out valid; a request without a usable key
    takes one for good. An address with no token left gets 429 and no lookup.
    """

    def charge(self, address: str) -> None:
        """Take a token for a (possible) failure from ``address``.

        Raises:
            ApiError: 429 with ``Retry-After`` when the address has failed too often.
        """
        wait = self.take(address)
        if wait is not None:
            raise ApiError(
                429,
                "rate_limited",
                f"too many failed authentication attempts from this address (at most"
                f" {self.per_minute} a minute); check the API key and retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )


def client_address(client: Any) -> str:
    """The bucket of a client address: the IPv4 address, or the IPv6 /64 it belongs to.

    One host usually has a whole IPv6 /64, so its addresses share one bucket.
    """
    return _bucket(getattr(client, "host", None) or "")


@functools.lru_cache(maxsize=4096)
def _bucket(host: str) -> str:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return host or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def bearer_secret(header: str | None) -> str:
    """The key from an ``Authorization: Bearer ...`` header.

    Raises:
        ApiError: 401 when the header is missing or not a bearer token.
    """
    challenge = {"WWW-Authenticate": "Bearer"}
    if not header:
        raise ApiError(
            401,
            "unauthorized",
            "missing API key: send 'Authorization: Bearer <key>' (create one with"
            " `crewchief keys create`)",
            headers=challenge,
        )
    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        raise ApiError(
            401, "unauthorized", "expected 'Authorization: Bearer <key>'", headers=challenge
        )
    return secret.strip()
