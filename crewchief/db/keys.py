"""API keys: created once (the secret is shown once), stored as SHA-256, revoked by id.

A key is ``cc_`` plus 43 URL-safe characters (256 random bits). Because keys
are random and long, a plain SHA-256 is enough to store them safely (a slow
password hash protects guessable secrets, which these are not), and it lets a
request's key be found with one indexed lookup.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from crewchief.db.models import utcnow
from crewchief.db.writer import Tx, Writer
from crewchief.errors import CrewchiefError

KEY_PREFIX = "cc_"
OWNER_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@")


class ApiKeyError(CrewchiefError):
    code = "invalid_key"


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    id: str
    name: str
    owner: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = None
    tier: str | None = None  # its plan in the settings' [plans] (None: the default plan)


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def check_owner(owner: str) -> str:
    if not owner or len(owner) > 64 or not set(owner) <= OWNER_CHARS:
        raise ApiKeyError(
            f"owner: expected 1-64 characters of letters, digits and '-_.@', got {owner!r}"
        )
    return owner


async def create_key(
    store: Writer, *, name: str, owner: str, tier: str | None = None
) -> tuple[ApiKeyInfo, str]:
    """Create a key (of plan ``tier``). Returns its record and the secret (which is not
    stored)."""
    check_owner(owner)
    if not name or len(name) > 200:
        raise ApiKeyError(f"name: expected 1-200 characters, got {len(name)}")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    info = ApiKeyInfo(
        id="key_" + secrets.token_hex(6),
        name=name,
        owner=owner,
        prefix=secret[:10],
        created_at=utcnow(),
        tier=tier,
    )

    def work(tx: Tx) -> list:
        tx.execute(
            "INSERT INTO api_keys (id, name, owner, key_hash, prefix, created_at, tier)"
            " VALUES (:id, :name, :owner, :hash, :prefix, :now, :tier)",
            {
                "id": info.id,
                "name": name,
                "owner": owner,
                "hash": hash_key(secret),
                "prefix": info.prefix,
                "now": tx.ts(info.created_at),
                "tier": tier,
            },
        )
        return []

    await store.run(work)
    return info, secret


def _info(tx: Tx, row: tuple) -> ApiKeyInfo:
    return ApiKeyInfo(
        id=row[0],
        name=row[1],
        owner=row[2],
        prefix=row[3],
        created_at=tx.parse_ts(row[4]),
        revoked_at=tx.parse_ts(row[5]),
        tier=row[6],
    )


_COLUMNS = "id, name, owner, prefix, created_at, revoked_at, tier"


async def list_keys(store: Writer) -> list[ApiKeyInfo]:
    def work(tx: Tx) -> list[ApiKeyInfo]:
        rows = tx.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, id").fetchall()
        return [_info(tx, r) for r in rows]

    return await store.read(work)


async def revoke_key(store: Writer, key_id: str) -> ApiKeyInfo:
    """Revoke a key by id. Revoking a revoked key changes nothing.

    Raises:
        ApiKeyError: no key has that id.
    """

    def work(tx: Tx) -> ApiKeyInfo | None:
        tx.execute(
            "UPDATE api_keys SET revoked_at = :now WHERE id = :id AND revoked_at IS NULL",
            {"id": key_id, "now": tx.ts(utcnow())},
        )
        row = tx.one(f"SELECT {_COLUMNS} FROM api_keys WHERE id = :id", {"id": key_id})
        return _info(tx, row) if row else None

    info = await store.run(work)
    if info is None:
        raise ApiKeyError(f"no API key has the id {key_id!r} (see `crewchief keys list`)")
    return info


async def verify_key(store: Writer, secret: str) -> ApiKeyInfo | None:
    """The active key with this secret, or None."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    digest = hash_key(secret)

    def work(tx: Tx) -> ApiKeyInfo | None:
        row = tx.one(
            f"SELECT {_COLUMNS} FROM api_keys WHERE key_hash = :h AND revoked_at IS NULL",
            {"h": digest},
        )
        return _info(tx, row) if row else None

    # Looked up by digest: timing reveals nothing about the secret itself.
    return await store.read(work)


async def set_tier(store: Writer, key_id: str, tier: str | None) -> ApiKeyInfo:
    """Move a key to plan ``tier`` (None: the default plan).

    Raises:
        ApiKeyError: no key has that id.
    """

    def work(tx: Tx) -> ApiKeyInfo | None:
        tx.execute("UPDATE api_keys SET tier = :tier WHERE id = :id", {"id": key_id, "tier": tier})
        row = tx.one(f"SELECT {_COLUMNS} FROM api_keys WHERE id = :id", {"id": key_id})
        return _info(tx, row) if row else None

    info = await store.run(work)
    if info is None:
        raise ApiKeyError(f"no API key has the id {key_id!r} (see `crewchief keys list`)")
    return info


async def get_key(store: Writer, key_id: str) -> ApiKeyInfo | None:
    def work(tx: Tx) -> ApiKeyInfo | None:
        row = tx.one(f"SELECT {_COLUMNS} FROM api_keys WHERE id = :id", {"id": key_id})
        return _info(tx, row) if row else None

    return await store.read(work)
