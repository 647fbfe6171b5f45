"""Owners' credentials as calls carry them: the scrubber takes a key out of error texts
however an upstream quotes it, nothing prints a key, and the registry builds a provider's
models with the owner's key (cached apart, by digest) and the platform's otherwise."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from pydantic import SecretStr

from crewchief.config import ProviderConfig, Settings
from crewchief.models.credentials import Credential, OwnerCredentials, fingerprint, scrub
from crewchief.models.registry import ModelRegistry

KEY = "sk-proj-Ab+Cd/Ef=0123456789ghijKLMNopqrSTUV"


@pytest.mark.parametrize(
    "quoted",
    [
        f"Incorrect API key provided: {KEY}.",
        json.dumps({"error": f"bad key {KEY}"}),
        f"GET /v1/models?key={quote(KEY, safe='')}",
        f"key starts {KEY[:16]}... and ends ...{KEY[-12:]}",
        f"Bearer{KEY}suffix",
    ],
    ids=["plain", "json", "url-encoded", "cut-short", "glued"],
)
def test_the_scrubber_takes_the_key_out_however_it_is_quoted(quoted: str) -> None:
    cleaned = scrub(quoted, [KEY])
    assert "[redacted]" in cleaned
    for i in range(len(KEY) - 8):
        assert KEY[i : i + 9] not in cleaned


def test_the_scrubber_leaves_other_text_alone() -> None:
    text = "HTTP 429: rate limit reached for gpt-4o-mini in organization org-123"
    assert scrub(text, [KEY, ""]) == text


def test_nothing_prints_a_key() -> None:
    credential = Credential("openai", SecretStr(KEY), None, fingerprint(KEY))
    owned = OwnerCredentials("alice", {"openai": credential})
    for shown in (repr(credential), str(owned), repr(owned.get("openai")), credential.digest):
        assert KEY not in shown and KEY[:12] not in shown
    assert credential.fingerprint == "…STUV" and fingerprint("short-key").startswith("sha256:")
    assert owned.scrub(f"echo {KEY}") == "echo [redacted]"


def test_the_registry_builds_an_owners_models_with_their_key(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CREWCHIEF_ALLOW_MODEL_REQUESTS", "1")
    monkeypatch.setenv("UP_KEY", "sk-platform-key")
    up = ProviderConfig(type="openai", base_url="http://127.0.0.1:9/v1", api_key_env="UP_KEY")
    cfg = settings.models["delegate"].model_copy(
        update={"model": "up:gpt-4o-mini", "fallbacks": ["fake:default"]}
    )
    registry = ModelRegistry(
        settings.model_copy(update={"providers": {"up": up}}), {"delegate": cfg}
    )

    def owned(key: str, url: str | None = None) -> OwnerCredentials:
        return OwnerCredentials("alice", {"up": Credential("up", SecretStr(key), url)})

    (spec, platform), (_, fake) = registry.candidates("delegate", "low")
    (_, mine), (_, fake_too) = registry.candidates("delegate", "low", credentials=owned(KEY))
    assert spec == "up:gpt-4o-mini" and fake_too is fake  # a fake model takes no key
    assert platform.openai_api_key.get_secret_value() == "sk-platform-key"
    assert mine.openai_api_key.get_secret_value() == KEY and mine is not platform
    assert registry.candidates("delegate", "low", credentials=owned(KEY))[0][1] is mine
    elsewhere = registry.candidates(
        "delegate", "low", credentials=owned(KEY, "https://llm.example.com/v1")
    )[0][1]
    assert elsewhere is not mine and elsewhere.openai_api_base == "https://llm.example.com/v1"
    assert registry.candidates("delegate", "low")[0][1] is platform
    assert registry.credential_for("fake:default", owned(KEY)) is None
