"""Owners' provider credentials in the app database, encrypted at rest.

A row per owner and provider name keeps the API key encrypted with Fernet (AES-128-CBC
with HMAC-SHA256, from the maintained ``cryptography`` package) under the keys of the
``secret_keys`` setting (``CREWCHIEF_SECRET_KEYS``): the first encrypts, every one
decrypts, so a key is rotated by putting a new one first, running ``crewchief credentials
rotate`` (which encrypts every row again with it) and then dropping the old one. The
ciphertext also holds the owner, the provider and the base URL, and a row whose columns
disagree with it is refused: someone who can write the table cannot move a key to another
owner or point it at another server. Only the non-secret ``fingerprint`` (see
:func:`crewchief.models.credentials.fingerprint`) is ever shown.

The row's ``owner`` is the API key owner, or ``""`` for the owner of calls made without a
key (library use, keyless dev mode), as for profiles.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pydantic import SecretStr

from crewchief.config import check_secret_key
from crewchief.db.models import utcnow
from crewchief.db.writer import Tx, Writer
from crewchief.errors import CredentialsUnavailable
from crewchief.models.credentials import Credential, OwnerCredentials, fingerprint

KEYS_SETTING = "secret_keys (CREWCHIEF_SECRET_KEYS)"
HOW_TO_KEY = (
    "make a key with `crewchief credentials keygen` and set it in CREWCHIEF_SECRET_KEYS"
    " (or secret_keys in crewchief.toml) on every API server and worker"
)


def new_key() -> str:
    """A new Fernet key (URL-safe base64 of 32 random bytes) for ``secret_keys``."""
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


class SecretBox:
    """Encrypts with the first of ``keys``, decrypts with any (``MultiFernet``).

    Raises:
        CredentialsUnavailable: no key is given.
        ConfigError: a key is not a Fernet key.
    """

    def __init__(self, keys: Sequence[str | SecretStr]):
        from cryptography.fernet import Fernet, MultiFernet

        plain = [k.get_secret_value() if isinstance(k, SecretStr) else k for k in keys]
        if not plain:
            raise CredentialsUnavailable(f"no key to encrypt credentials with: {HOW_TO_KEY}")
        for i, key in enumerate(plain):
            check_secret_key(key.strip(), i)
        self._fernet = MultiFernet([Fernet(k.strip().encode()) for k in plain])

    def __repr__(self) -> str:
        return "SecretBox(...)"

    def seal(self, payload: dict[str, str | None]) -> str:
        return self._fernet.encrypt(json.dumps(payload).encode()).decode()

    def open(self, token: str) -> dict[str, str | None]:
        """Raises: CredentialsUnavailable when no key decrypts ``token``."""
        from cryptography.fernet import InvalidToken

        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except (InvalidToken, ValueError):
            raise CredentialsUnavailable(
                f"a stored credential cannot be decrypted with any key of {KEYS_SETTING}: was"
                " its key dropped before `crewchief credentials rotate` ran? Put the old key"
                " back (after the new one), or delete and store the credential again"
            ) from None

    def rotate(self, token: str) -> str:
        """``token`` encrypted again with the first key."""
        from cryptography.fernet import InvalidToken

        try:
            return self._fernet.rotate(token.encode()).decode()
        except InvalidToken:
            raise CredentialsUnavailable(
                f"a stored credential cannot be decrypted with any key of {KEYS_SETTING}"
            ) from None


@dataclass(frozen=True, slots=True)
class CredentialRow:
    """A stored credential as it may be shown: never the key."""

    owner: str | None
    provider: str
    base_url: str | None
    fingerprint: str
    created_at: datetime
    updated_at: datetime


def owner_key(owner: str | None) -> str:
    """An owner as its row stores it."""
    return owner or ""


_COLUMNS = "owner, provider, base_url, fingerprint, created_at, updated_at"


def _row(tx: Tx, row: tuple) -> CredentialRow:
    return CredentialRow(
        row[0] or None,
        row[1],
        row[2],
        row[3],
        tx.parse_ts(row[4]),  # type: ignore[arg-type]
        tx.parse_ts(row[5]),  # type: ignore[arg-type]
    )


async def put(
    store: Writer,
    box: SecretBox,
    *,
    owner: str | None,
    provider: str,
    api_key: SecretStr,
    base_url: str | None,
) -> CredentialRow:
    """Store (or replace) the owner's credential for ``provider``; the row after."""
    secret = api_key.get_secret_value()
    sealed = box.seal({"owner": owner_key(owner), "provider": provider, "base_url": base_url,
                       "api_key": secret})  # fmt: skip
    params = {
        "owner": owner_key(owner),
        "provider": provider,
        "base_url": base_url,
        "ciphertext": sealed,
        "fingerprint": fingerprint(secret),
    }

    def work(tx: Tx) -> CredentialRow:
        now = tx.ts(utcnow())
        tx.execute(
            "INSERT INTO credentials (owner, provider, base_url, ciphertext, fingerprint,"
            " created_at, updated_at) VALUES (:owner, :provider, :base_url, :ciphertext,"
            " :fingerprint, :now, :now) ON CONFLICT (owner, provider) DO UPDATE SET"
            " base_url = :base_url, ciphertext = :ciphertext, fingerprint = :fingerprint,"
            " updated_at = :now",
            {**params, "now": now},
        )
        row = tx.one(
            f"SELECT {_COLUMNS} FROM credentials WHERE owner = :owner AND provider = :provider",
            params,
        )
        assert row is not None
        return _row(tx, row)

    return await store.run(work)


async def listed(store: Writer, owner: str | None) -> list[CredentialRow]:
    """The owner's credentials by provider name, without their keys."""

    def work(tx: Tx) -> list[CredentialRow]:
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM credentials WHERE owner = :owner ORDER BY provider",
            {"owner": owner_key(owner)},
        ).fetchall()
        return [_row(tx, r) for r in rows]

    return await store.read(work)


async def delete(store: Writer, *, owner: str | None, provider: str | None = None) -> int:
    """Delete the owner's credential for ``provider`` (every one of theirs when None); how
    many there were."""
    sql = "DELETE FROM credentials WHERE owner = :owner"
    if provider is not None:
        sql += " AND provider = :provider"

    def work(tx: Tx) -> int:
        return tx.execute(sql, {"owner": owner_key(owner), "provider": provider}).rowcount

    return await store.run(work)


async def count(store: Writer, owner: str | None) -> int:
    """How many credentials the owner stored (no key needed to tell)."""
    row = await store.read(
        lambda tx: tx.one(
            "SELECT COUNT(*) FROM credentials WHERE owner = :owner", {"owner": owner_key(owner)}
        )
    )
    return int(row[0]) if row else 0


def _credential(box: SecretBox, owner: str, row: tuple) -> Credential:
    """The decrypted credential of a row (provider, base_url, ciphertext, fingerprint).

    Raises:
        CredentialsUnavailable: no key decrypts it, or it disagrees with its row.
    """
    provider, base_url, ciphertext, shown = row
    sealed = box.open(ciphertext)
    if (sealed.get("owner"), sealed.get("provider"), sealed.get("base_url")) != (
        owner,
        provider,
        base_url,
    ):
        raise CredentialsUnavailable(
            f"the stored credential of provider {provider!r} does not match its row (was"
            " the credentials table changed by hand?); store it again"
        )
    return Credential(provider, SecretStr(str(sealed.get("api_key") or "")), base_url, shown)


async def load(store: Writer, box: SecretBox | None, owner: str | None) -> OwnerCredentials:
    """The owner's credentials, decrypted (none stored: an empty set, even with no key).

    Raises:
        CredentialsUnavailable: the owner has credentials and ``box`` is None (no key is
            configured) or cannot decrypt one of them.
    """
    key = owner_key(owner)

    def work(tx: Tx) -> list[tuple]:
        return tx.execute(
            "SELECT provider, base_url, ciphertext, fingerprint FROM credentials"
            " WHERE owner = :owner",
            {"owner": key},
        ).fetchall()

    rows = await store.read(work)
    if not rows:
        return OwnerCredentials(owner)
    if box is None:
        raise CredentialsUnavailable(
            f"credentials are stored but {KEYS_SETTING} is not set here: {HOW_TO_KEY}"
        )
    return OwnerCredentials(owner, {r[0]: _credential(box, key, tuple(r)) for r in rows})


async def rotate(store: Writer, box: SecretBox) -> int:
    """Encrypt every stored credential again with the first key (in one transaction: all
    or none); how many there are.

    Raises:
        CredentialsUnavailable: a credential no key decrypts (nothing is changed).
    """

    def work(tx: Tx) -> int:
        rows = tx.execute("SELECT owner, provider, ciphertext FROM credentials").fetchall()
        for owner, provider, ciphertext in rows:
            tx.execute(
                "UPDATE credentials SET ciphertext = :ciphertext"
                " WHERE owner = :owner AND provider = :provider",
                {"owner": owner, "provider": provider, "ciphertext": box.rotate(ciphertext)},
            )
        return len(rows)

    return await store.run(work)
