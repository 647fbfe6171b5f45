"""Owners' provider credentials as model calls use them, and the scrubber of error texts.

An owner may store an API key (and, for OpenAI-compatible providers, a base URL) per
provider name (see :mod:`crewchief.db.credentials`); calls of theirs to models of that
provider then go out with their key instead of the platform's, and the ledger says who
paid (``paid_by``). Here are only the shapes calls carry, with no LangChain and no
storage: the key is a :class:`~pydantic.SecretStr`, so no ``repr``, log line or dump
shows it, and :func:`scrub` takes keys out of the texts of upstream errors, which some
servers echo ("Incorrect API key provided: sk-...").
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import quote, quote_plus

from pydantic import SecretStr

# Who paid for a model call: the platform's credentials, or the owner's own.
PLATFORM, OWNER = "platform", "owner"
PAID_BY: tuple[str, ...] = (PLATFORM, OWNER)
# The provider types whose API key an owner's can replace: OpenAI and any OpenAI-compatible
# server (whose base_url the owner may set too), and Google (a Gemini API key).
CREDENTIAL_TYPES: tuple[str, ...] = ("openai", "google")
REDACTED = "[redacted]"
# A run of characters an API key is made of; one that holds 8 characters of a key in a row
# (a key cut short, or shown in part) is taken out whole.
_WORD = re.compile(r"[A-Za-z0-9_\-.~+/=:]{8,}")
_PART = 8


@dataclass(frozen=True, slots=True)
class Credential:
    """One owner's credential for one provider name: their API key, and for an
    OpenAI-compatible provider, where their requests go (None: the provider's own URL)."""

    provider: str
    api_key: SecretStr
    base_url: str | None = None
    fingerprint: str = ""  # what the owner recognises it by, e.g. "…3f9a" (never the key)

    @property
    def digest(self) -> str:
        """Names this credential in caches: a SHA-256 over the provider, the base URL and
        the key (a key changed or moved elsewhere is another credential)."""
        raw = "\0".join((self.provider, self.base_url or "", self.api_key.get_secret_value()))
        return hashlib.sha256(raw.encode()).hexdigest()[:32]

    def scrub(self, text: str) -> str:
        """``text`` without this credential's key (see :func:`scrub`)."""
        return scrub(text, [self.api_key.get_secret_value()])


@dataclass(frozen=True, slots=True)
class OwnerCredentials:
    """The credentials one owner stored, by provider name."""

    owner: str | None
    by_provider: Mapping[str, Credential] = field(default_factory=dict)

    def get(self, provider: str) -> Credential | None:
        return self.by_provider.get(provider)

    def __bool__(self) -> bool:
        return bool(self.by_provider)

    def scrub(self, text: str) -> str:
        """``text`` without any of the owner's keys."""
        return scrub(text, [c.api_key.get_secret_value() for c in self.by_provider.values()])


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with each secret replaced by ``[redacted]``: as it is, JSON-escaped or
    URL-encoded, and any run of its characters that holds 8 of the secret in a row (an
    upstream that echoes a key cut short or partly masked)."""
    for secret in secrets:
        if not secret:
            continue
        forms = {secret, json.dumps(secret)[1:-1], quote(secret, safe=""), quote_plus(secret)}
        for form in sorted(forms, key=len, reverse=True):
            text = text.replace(form, REDACTED)
        if len(secret) >= _PART:
            text = _WORD.sub(_redactor(secret), text)
    return text


def _redactor(secret: str) -> Callable[[re.Match[str]], str]:
    """Replaces a run of characters holding 8 of ``secret``'s in a row."""

    def replace(match: re.Match[str]) -> str:
        word = match.group()
        shared = any(word[i : i + _PART] in secret for i in range(len(word) - _PART + 1))
        return REDACTED if shared else word

    return replace


def fingerprint(secret: str) -> str:
    """What an owner recognises a key by without it being shown: its last 4 characters
    when it is long enough to spare them (API keys are), else a short hash."""
    if len(secret) >= 20:
        return "…" + secret[-4:]
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:8]
