"""Owners' provider credentials as the service uses them: checked, stored, listed, deleted,
rotated, and read back decrypted through a short cache.

Rows live in the app database, encrypted (:mod:`crewchief.db.credentials`). Gateway requests
and operations' model calls read an owner's credentials through
:meth:`CredentialBook.for_owner`, which keeps them :data:`CACHE_SECONDS` per owner in this
process (at most :data:`MAX_OWNERS` owners), so a request does not decrypt every time: a
change made through this process is seen at once, one made through another within that
time. An owner with no credentials is cached too (one read per owner per period).
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from crewchief.config import Settings
from crewchief.db import credentials as rows
from crewchief.db.credentials import CredentialRow, SecretBox
from crewchief.db.keys import check_owner
from crewchief.db.writer import Writer
from crewchief.errors import CredentialsUnavailable, InvalidRequest
from crewchief.models.credentials import CREDENTIAL_TYPES, OwnerCredentials
from crewchief.models.providers import BUILTIN_PROVIDERS

CACHE_SECONDS = 5.0
MAX_OWNERS = 10_000
MAX_KEY_CHARS = 4096
MAX_URL_CHARS = 2048


def credential_providers(settings: Settings) -> dict[str, str]:
    """The provider names an owner may store a credential for, with their type: those of
    type ``openai`` or ``google``, built in or in ``[providers]``."""
    named = {**BUILTIN_PROVIDERS, **settings.providers}
    return {n: cfg.type for n, cfg in sorted(named.items()) if cfg.type in CREDENTIAL_TYPES}


def _invalid(path: str, message: str) -> InvalidRequest:
    return InvalidRequest(f"{path}: {message}", [{"path": path, "message": message}])


def _check_key(api_key: Any) -> SecretStr:
    """The key as a SecretStr. The messages never hold any of it."""
    secret = api_key.get_secret_value() if isinstance(api_key, SecretStr) else api_key
    if not isinstance(secret, str) or not secret:
        raise _invalid("api_key", "expected a non-empty string")
    if len(secret) > MAX_KEY_CHARS:
        raise _invalid("api_key", f"expected at most {MAX_KEY_CHARS} characters")
    if not all("!" <= c <= "~" for c in secret):
        raise _invalid(
            "api_key", "expected printable ASCII without spaces (an API key as the provider"
            " gave it)",
        )  # fmt: skip
    return SecretStr(secret)


def _private(host: str) -> bool:
    """Whether ``host`` names this machine or a private network by its very name or
    address (host names are not resolved: the network's egress rules are the real guard)."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global


def _check_url(settings: Settings, kind: str, base_url: Any) -> str | None:
    if base_url is None:
        return None
    if kind != "openai":
        raise _invalid("base_url", "only an OpenAI-compatible (type openai) provider takes one")
    if not isinstance(base_url, str) or not base_url.strip():
        raise _invalid("base_url", "expected an http(s) URL")
    if len(base_url) > MAX_URL_CHARS:
        raise _invalid("base_url", f"expected at most {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(base_url.strip())
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises on a port that is no number
    except ValueError:
        raise _invalid("base_url", "expected an http(s) URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise _invalid("base_url", "expected an http(s) URL with a host, e.g. https://host/v1")
    if parts.username is not None or parts.password is not None:
        raise _invalid("base_url", "no user or password in the URL: the key goes in api_key")
    if parts.query or parts.fragment:
        raise _invalid("base_url", "expected no query string or fragment")
    if not settings.credential_private_urls and _private(host.lower()):
        raise _invalid(
            "base_url", "a loopback, private or link-local address is refused here (the"
            " operator allows them with credential_private_urls)",
        )  # fmt: skip
    return base_url.strip().rstrip("/")


def check_credential(
    settings: Settings, provider: Any, api_key: Any, base_url: Any = None
) -> tuple[str, SecretStr, str | None]:
    """A credential's fields, checked: the provider name, the key, the base URL.

    Raises:
        InvalidRequest: naming the field (``provider``, ``api_key`` or ``base_url``); the
            message never holds the key.
    """
    known = credential_providers(settings)
    if not isinstance(provider, str) or provider not in known:
        raise _invalid(
            "provider",
            f"unknown provider {str(provider)[:64]!r}; expected one of {sorted(known)} (a"
            " [providers.NAME] of type openai or google in crewchief.toml adds one)",
        )
    return provider, _check_key(api_key), _check_url(settings, known[provider], base_url)


class CredentialBook:
    """The owners' credentials of one app database.

    Args:
        settings: ``secret_keys`` (none: credentials can be listed and deleted, not stored
            or used), ``providers``, ``credential_private_urls``.
        store: The app database.
    """

    def __init__(self, settings: Settings, store: Writer):
        self.settings = settings
        self.store = store
        self._box = SecretBox(settings.secret_keys) if settings.secret_keys else None
        self._cache: dict[str, tuple[float, OwnerCredentials | CredentialsUnavailable]] = {}

    def _sealer(self) -> SecretBox:
        if self._box is None:
            return SecretBox([])  # raises CredentialsUnavailable, saying how to make a key
        return self._box

    async def put(
        self, owner: str | None, provider: Any, api_key: Any, base_url: Any = None
    ) -> CredentialRow:
        """Store (or replace) ``owner``'s credential for ``provider``; the row after.

        Raises:
            InvalidRequest: a field is invalid (nothing is stored).
            ApiKeyError: ``owner`` is not an owner name (1-64 of ``a-zA-Z0-9-_.@``).
            CredentialsUnavailable: no ``secret_keys`` is configured.
        """
        name, key, url = check_credential(self.settings, provider, api_key, base_url)
        if owner is not None:
            check_owner(owner)
        row = await rows.put(
            self.store, self._sealer(), owner=owner, provider=name, api_key=key, base_url=url
        )
        self._forget(owner)
        return row

    async def list(self, owner: str | None) -> list[CredentialRow]:
        """``owner``'s credentials, without their keys."""
        return await rows.listed(self.store, owner)

    async def delete(self, owner: str | None, provider: str | None = None) -> int:
        """Delete ``owner``'s credential for ``provider`` (every one when None), known
        provider or not; how many there were."""
        deleted = await rows.delete(self.store, owner=owner, provider=provider)
        self._forget(owner)
        return deleted

    async def rotate(self) -> int:
        """Encrypt every stored credential again with the first of ``secret_keys``; how many.

        Raises:
            CredentialsUnavailable: no key is configured, or one credential cannot be
                decrypted with any (nothing is changed).
        """
        count = await rows.rotate(self.store, self._sealer())
        self._cache.clear()
        return count

    async def for_owner(self, owner: str | None) -> OwnerCredentials:
        """``owner``'s credentials, decrypted, from the short cache (none stored: an empty set).

        Raises:
            CredentialsUnavailable: they cannot be decrypted here (no key, or not theirs).
        """
        key, now = rows.owner_key(owner), time.monotonic()
        cached = self._cache.get(key)
        if cached is None or now - cached[0] >= CACHE_SECONDS:
            try:
                found: OwnerCredentials | CredentialsUnavailable = await rows.load(
                    self.store, self._box, owner
                )
            except CredentialsUnavailable as exc:
                found = exc
            if key not in self._cache and len(self._cache) >= MAX_OWNERS:
                self._cache = {k: v for k, v in self._cache.items() if now - v[0] < CACHE_SECONDS}
                if len(self._cache) >= MAX_OWNERS:
                    self._cache.clear()
            cached = self._cache[key] = (now, found)
        if isinstance(cached[1], CredentialsUnavailable):
            raise CredentialsUnavailable(str(cached[1]))
        return cached[1]

    def _forget(self, owner: str | None) -> None:
        self._cache.pop(rows.owner_key(owner), None)
