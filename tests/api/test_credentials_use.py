"""Bring your own key in use, over the real app and a fake OpenAI-compatible upstream on
loopback: an owner's gateway requests and operations go out with their stored key (to their
own base URL when they gave one) and are marked ``paid_by: owner``, another owner's with the
platform's; an upstream that echoes the key has it scrubbed; an owner's failing key opens
only their own circuit; credentials that cannot be decrypted are refused, not swapped for
the platform's."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from bench.fake_openai import FakeOpenAIThread
from crewchief.db.credentials import new_key
from crewchief.runtime.credentials import CredentialBook

PLATFORM_KEY = "sk-platform-9f8e7d6c5b4a39281706ffeeddccbbaa"
SECRET = "sk-alice-own-0123456789abcdefghijKLMNOPQRSTuvwxyz"
CHAT = {"model": "delegate", "messages": [{"role": "user", "content": "hello"}]}


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAIThread]:
    with FakeOpenAIThread() as fake:
        yield fake


@pytest.fixture
def fresh(upstream: FakeOpenAIThread) -> FakeOpenAIThread:
    upstream.clear_script()
    upstream.clear_requests()
    return upstream


def byok_settings(fake: FakeOpenAIThread, **more: Any) -> dict[str, Any]:
    """Settings whose aliases run on ``up:gpt-4o-mini``, the fake with the platform's key."""
    up = {"type": "openai", "base_url": fake.base_url, "api_key_env": "UP_PLATFORM_KEY"}
    return {
        "models": "up:gpt-4o-mini",
        "secret_keys": [new_key()],
        "providers": {"up": up},
        "gateway": {
            "rewrite": False,
            "cache": False,
            "circuit_failures": 1,
            "embeddings_model": "up:text-embedding-3-small",
        },
        "knowledge": {"memory": False},
        "credential_private_urls": True,  # the fake listens on loopback
        **more,
    }


@pytest.fixture
def allow_requests(monkeypatch: pytest.MonkeyPatch) -> None:
    # Real requests are allowed: the only upstream is the fake on loopback.
    monkeypatch.setenv("CREWCHIEF_ALLOW_MODEL_REQUESTS", "1")
    monkeypatch.setenv("UP_PLATFORM_KEY", PLATFORM_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


@pytest.fixture
async def byok(
    api_factory: Any, fresh: FakeOpenAIThread, allow_requests: None
) -> AsyncIterator[Any]:
    async with api_factory(**byok_settings(fresh)) as api:
        yield api


async def ledger(api: Any) -> list[tuple[Any, ...]]:
    store = api.app.state.chief.services.store
    return await store.read(
        lambda tx: tx.execute(
            "SELECT owner, model, paid_by, error FROM model_calls ORDER BY id"
        ).fetchall()
    )


def sent_keys(fake: FakeOpenAIThread) -> list[str]:
    return [r["headers"].get("authorization", "") for r in fake.requests]


async def test_an_owners_requests_go_out_with_their_key_and_others_with_the_platforms(
    byok: Any, fresh: FakeOpenAIThread
) -> None:
    await owner_and_platform(byok, fresh)


@pytest.mark.postgres
async def test_the_same_in_scaled_mode_on_postgresql(
    api_factory: Any, fresh: FakeOpenAIThread, allow_requests: None, postgres_url: str
) -> None:
    async with api_factory(**byok_settings(fresh), database_url=postgres_url) as api:
        assert api.settings.is_postgres
        await owner_and_platform(api, fresh)


async def owner_and_platform(byok: Any, fresh: FakeOpenAIThread) -> None:
    """alice's requests with her key, bob's with the platform's, and hers again once
    she deleted hers."""
    put = await byok.client.put("/v1/credentials/up", json={"api_key": SECRET}, headers=byok.auth())
    assert put.status_code == 200, put.text
    mine = await byok.client.post("/v1/chat/completions", json=CHAT, headers=byok.auth())
    assert mine.status_code == 200, mine.text
    assert mine.json()["x_crewchief"]["credentials"] == "owner"
    theirs = await byok.client.post("/v1/chat/completions", json=CHAT, headers=byok.auth("bob"))
    assert theirs.json()["x_crewchief"]["credentials"] == "platform"
    streamed = await byok.client.post(
        "/v1/chat/completions", json={**CHAT, "stream": True}, headers=byok.auth()
    )
    last = [line for line in streamed.text.splitlines() if "x_crewchief" in line][-1]
    assert json.loads(last.removeprefix("data: "))["x_crewchief"]["credentials"] == "owner"
    embedded = await byok.client.post("/v1/embeddings", json={"input": "hi"}, headers=byok.auth())
    assert embedded.json()["x_crewchief"]["credentials"] == "owner"
    assert (
        sent_keys(fresh)
        == [f"Bearer {SECRET}", f"Bearer {PLATFORM_KEY}"] + [f"Bearer {SECRET}"] * 2
    )
    assert [row[:3] for row in await ledger(byok)] == [
        ("alice", "up:gpt-4o-mini", "owner"),
        ("bob", "up:gpt-4o-mini", "platform"),
        ("alice", "up:gpt-4o-mini", "owner"),
        ("alice", "up:text-embedding-3-small", "owner"),
    ]
    # Deleted: the platform's key again, at once in this process.
    await byok.client.delete("/v1/credentials/up", headers=byok.auth())
    after = await byok.client.post("/v1/chat/completions", json=CHAT, headers=byok.auth())
    assert after.json()["x_crewchief"]["credentials"] == "platform"
    assert sent_keys(fresh)[-1] == f"Bearer {PLATFORM_KEY}"


async def test_an_owners_base_url_takes_their_requests_to_their_server(
    byok: Any, fresh: FakeOpenAIThread
) -> None:
    body = {"api_key": SECRET, "base_url": fresh.base_url}
    put = await byok.client.put("/v1/credentials/openai", json=body, headers=byok.auth())
    assert put.status_code == 200, put.text
    chat = {**CHAT, "model": "openai:gpt-4o"}  # the platform has no OpenAI key at all
    r = await byok.client.post("/v1/chat/completions", json=chat, headers=byok.auth())
    assert r.status_code == 200, r.text
    meta = r.json()["x_crewchief"]
    assert meta["model"] == "openai:gpt-4o" and meta["credentials"] == "owner"
    (sent,) = fresh.requests
    assert (
        sent["body"]["model"] == "gpt-4o" and sent["headers"]["authorization"] == f"Bearer {SECRET}"
    )


def echo_401() -> dict[str, Any]:
    message = f"Incorrect API key provided: {SECRET}. (starts {SECRET[:20]}...)"
    return {"status": 401, "body": {"error": {"message": message, "code": "invalid_api_key"}}}


async def test_an_upstream_401_echoing_the_key_is_scrubbed_and_opens_only_the_owners_circuit(
    byok: Any, fresh: FakeOpenAIThread
) -> None:
    await byok.client.put("/v1/credentials/up", json={"api_key": SECRET}, headers=byok.auth())
    fresh.script(echo_401())
    failed = await byok.client.post("/v1/chat/completions", json=CHAT, headers=byok.auth())
    assert failed.status_code == 502, failed.text
    message = failed.json()["error"]["message"]
    assert "HTTP 401: Incorrect API key provided: [redacted]" in message
    assert SECRET not in failed.text and SECRET[:20] not in failed.text
    ((owner, model, paid_by, error),) = await ledger(byok)
    assert (
        (owner, paid_by) == ("alice", "owner")
        and "[redacted]" in error
        and SECRET[:20] not in error
    )
    # circuit_failures = 1: alice's key is out of service for her; the model is not for bob.
    bobs = await byok.client.post("/v1/chat/completions", json=CHAT, headers=byok.auth("bob"))
    assert bobs.status_code == 200, bobs.text
    again = await byok.client.post("/v1/chat/completions", json=CHAT, headers=byok.auth())
    assert again.status_code == 503 and again.json()["error"]["code"] == "circuit_open"
    assert len(fresh.requests) == 2  # alice's second request was not sent


async def test_credentials_that_cannot_be_decrypted_are_refused_not_replaced(
    byok: Any, fresh: FakeOpenAIThread
) -> None:
    chief = byok.app.state.chief
    # Stored under a key this server does not have (another deployment's, or one dropped).
    other = byok.settings.model_copy(update={"secret_keys": [SecretStr(new_key())]})
    await CredentialBook(other, chief.services.store).put("alice", "up", SECRET)
    r = await byok.client.post("/v1/chat/completions", json=CHAT, headers=byok.auth())
    assert r.status_code == 503, r.text
    assert r.json()["error"]["code"] == "credentials_unavailable"
    assert "rotate" in r.json()["error"]["message"] and SECRET not in r.text
    assert fresh.requests == []  # nothing went out on the platform's key instead
    assert (
        await byok.client.post("/v1/chat/completions", json=CHAT, headers=byok.auth("bob"))
    ).status_code == 200


async def finished(api: Any, owner: str, request: str) -> dict[str, Any]:
    """An operation of ``owner`` down the fast path (one call of the orchestrator), ended."""
    r = await api.client.post(
        "/v1/operations", json={"request": request, "route": "fast"}, headers=api.auth(owner)
    )
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 30  # a hang guard
    while True:
        op = (await api.client.get(r.json()["links"]["self"], headers=api.auth(owner))).json()
        if op["status"] in ("completed", "failed"):
            return op
        assert time.monotonic() < deadline, op
        await asyncio.sleep(0.05)


async def test_an_owners_operation_calls_its_models_with_their_key(
    byok: Any, fresh: FakeOpenAIThread
) -> None:
    await byok.client.put("/v1/credentials/up", json={"api_key": SECRET}, headers=byok.auth())
    mine = await finished(byok, "alice", "Say hello")
    assert mine["status"] == "completed", mine
    theirs = await finished(byok, "bob", "Say hello")
    assert theirs["status"] == "completed", theirs
    assert sent_keys(fresh) == [f"Bearer {SECRET}", f"Bearer {PLATFORM_KEY}"]
    assert [row[:3] for row in await ledger(byok)] == [
        ("alice", "up:gpt-4o-mini", "owner"),
        ("bob", "up:gpt-4o-mini", "platform"),
    ]
    # A key the provider refuses: the attempt's error is kept with the key scrubbed.
    fresh.script(echo_401())
    op = await finished(byok, "alice", "Say hello again")
    assert sent_keys(fresh)[2] == f"Bearer {SECRET}"
    (refused,) = [row for row in await ledger(byok) if row[3]]
    assert refused[:3] == ("alice", "up:gpt-4o-mini", "owner")
    assert "401 - Incorrect API key provided: [redacted]" in refused[3]
    assert SECRET[:20] not in refused[3]
    events = await byok.client.get(f"/v1/operations/{op['id']}?events=true", headers=byok.auth())
    assert events.status_code == 200 and SECRET[:20] not in events.text
