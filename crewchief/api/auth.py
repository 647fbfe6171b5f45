"""Who is calling: bearer API keys, a short cache of verified keys, per-key rate limits."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

from crewchief.api.errors import ApiError
from crewchief.db.keys import ApiKeyInfo, verify_key
from crewchief.db.repository import ANY_OWNER

# A verified key is trusted this long without asking the database again, so a
# key revoked with `crewchief keys revoke` stops working within this many seconds.
KEY_CACHE_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Caller:
    """The authenticated caller. ``owner`` scopes every operation it can see."""

    key_id: str
    owner: Any  # the key's owner, or ANY_OWNER in keyless dev mode
    name: str

    @property
    def owner_for_new(self) -> str | None:
        return None if self.owner is ANY_OWNER else self.owner


DEV_CALLER = Caller(key_id="dev", owner=ANY_OWNER, name="dev mode (no keys)")


class KeyCache:
    """Verified keys by secret, for :data:`KEY_CACHE_SECONDS`. Unknown keys are not cached."""

    def __init__(self, store: Any):
        self._store = store
        self._hits: dict[str, tuple[float, ApiKeyInfo]] = {}

    async def lookup(self, secret: str) -> ApiKeyInfo | None:
        now = time.monotonic()
        hit = self._hits.get(secret)
        if hit is not None and now - hit[0] < KEY_CACHE_SECONDS:
            return hit[1]
        info = await verify_key(self._store, secret)
        if info is None:
            self._hits.pop(secret, None)
            return None
        if len(self._hits) > 10_000:  # bounded: drop everything stale
            self._hits = {k: v for k, v in self._hits.items() if now - v[0] < KEY_CACHE_SECONDS}
        self._hits[secret] = (now, info)
        return info


class RateLimiter:
    """A token bucket per key: ``per_minute`` requests, refilled evenly over the minute."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._buckets: dict[str, tuple[float, float]] = {}

    def check(self, key: str) -> None:
        """Take one token for ``key``.

        Raises:
            ApiError: 429 with ``Retry-After`` when the bucket is empty.
        """
        if self.per_minute <= 0:
            return
        rate = self.per_minute / 60.0
        now = time.monotonic()
        tokens, last = self._buckets.get(key, (float(self.per_minute), now))
        tokens = min(float(self.per_minute), tokens + (now - last) * rate)
        if tokens < 1.0:
            self._buckets[key] = (tokens, now)
            wait = max(1, math.ceil((1.0 - tokens) / rate))
            raise ApiError(
                429,
                "rate_limited",
                f"rate limit of {self.per_minute} requests per minute exceeded; retry in {wait} s",
                headers={"Retry-After": str(wait)},
            )
        self._buckets[key] = (tokens - 1.0, now)


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
