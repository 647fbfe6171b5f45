"""Where an owner's key takes a gateway request: the targets of the providers they stored a
key for go out with it (Gemini through the Gemini API instead of Vertex AI), each in a
circuit of its own; the others, and local models, stay as they were."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from crewchief.config import Settings
from crewchief.gateway.targets import GEMINI_URL, Route, target, with_credentials
from crewchief.models.credentials import Credential, OwnerCredentials

KEY = "AIza-owner-0123456789abcdefghij"


@pytest.fixture
def settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("CREWCHIEF_ALLOW_MODEL_REQUESTS", "1")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "platform-project")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-platform")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return settings


def test_only_the_providers_the_owner_holds_a_key_for_change(settings: Settings) -> None:
    specs = ["google:gemini-2.5-flash", "openai:gpt-4o-mini", "local:qwen2.5-coder-0.5b"]
    chosen = Route([target(settings, s) for s in specs], "as asked")
    gemini, openai, local = chosen.targets
    assert gemini.token is not None and gemini.model == "google/gemini-2.5-flash"
    owned = OwnerCredentials(
        "alice", {"google": Credential("google", SecretStr(KEY), None, "…ghij")}
    )
    mine = with_credentials(chosen, owned)
    assert mine.reason == "as asked"
    theirs_gemini, same_openai, same_local = mine.targets
    assert (theirs_gemini.base_url, theirs_gemini.model) == (GEMINI_URL, "gemini-2.5-flash")
    assert theirs_gemini.api_key == KEY and theirs_gemini.token is None
    assert theirs_gemini.paid_by == "owner" and theirs_gemini.reasoning == gemini.reasoning
    assert theirs_gemini.circuit != gemini.circuit == "google:gemini-2.5-flash"
    assert KEY not in repr(theirs_gemini) and KEY not in theirs_gemini.circuit
    assert same_openai is openai and same_local is local and openai.paid_by == "platform"
    assert with_credentials(chosen, OwnerCredentials("bob")) is chosen
