"""``/v1/credentials`` over the real app: store, list and delete one's own provider keys,
owners kept apart, errors that name the field (and never hold the key), a clear 503 when
the server has no key to encrypt with, and ``DELETE /v1/memory`` leaving credentials be."""

from __future__ import annotations

from typing import Any

import pytest

from crewchief.db.credentials import new_key

SECRET = "sk-alice-0123456789abcdefghijKLMNOPQRSTuvwxyz"


@pytest.fixture
async def api(api_factory: Any) -> Any:
    async with api_factory(secret_keys=[new_key()]) as instance:
        yield instance


async def _listed(api: Any, owner: str = "alice") -> dict[str, Any]:
    r = await api.client.get("/v1/credentials", headers=api.auth(owner))
    assert r.status_code == 200, r.text
    return r.json()


async def test_store_list_replace_and_delete_ones_own_credential(api: Any) -> None:
    assert await _listed(api) == {"owner": "alice", "items": []}
    put = await api.client.put(
        "/v1/credentials/openai",
        json={"api_key": SECRET, "base_url": "https://llm.example.com/v1/"},
        headers=api.auth(),
    )
    assert put.status_code == 200, put.text
    stored = put.json()
    assert stored["provider"] == "openai" and stored["fingerprint"] == "…wxyz"
    assert stored["base_url"] == "https://llm.example.com/v1"
    assert set(stored) == {"provider", "base_url", "fingerprint", "created_at", "updated_at"}
    # Replaced: one credential, the new base URL (none: the provider's own).
    again = await api.client.put(
        "/v1/credentials/openai", json={"api_key": SECRET[::-1]}, headers=api.auth()
    )
    assert again.json()["base_url"] is None and again.json()["fingerprint"] == "…a-ks"
    listed = await _listed(api)
    assert [(c["provider"], c["fingerprint"]) for c in listed["items"]] == [("openai", "…a-ks")]
    assert SECRET not in str(listed) and SECRET[::-1] not in str(listed)
    # The table holds only ciphertext.
    store = api.app.state.chief.services.store
    rows = await store.read(lambda tx: tx.execute("SELECT * FROM credentials").fetchall())
    assert len(rows) == 1 and SECRET[::-1] not in str(rows)
    gone = await api.client.delete("/v1/credentials/openai", headers=api.auth())
    assert gone.json() == {"owner": "alice", "provider": "openai", "deleted": 1}
    assert (await api.client.delete("/v1/credentials/openai", headers=api.auth())).json()[
        "deleted"
    ] == 0
    assert (await _listed(api))["items"] == []


async def test_one_owner_never_sees_or_deletes_anothers_credential(api: Any) -> None:
    await api.client.put("/v1/credentials/openai", json={"api_key": SECRET}, headers=api.auth())
    assert (await _listed(api, "bob"))["items"] == []
    r = await api.client.delete("/v1/credentials/openai", headers=api.auth("bob"))
    assert r.json() == {"owner": "bob", "provider": "openai", "deleted": 0}
    assert len((await _listed(api))["items"]) == 1
    assert (await api.client.get("/v1/credentials")).status_code == 401  # no key, nothing


async def test_forgetting_the_memory_leaves_credentials(api: Any) -> None:
    await api.client.put("/v1/credentials/google", json={"api_key": SECRET}, headers=api.auth())
    r = await api.client.delete("/v1/memory", headers=api.auth())
    assert r.status_code == 200, r.text
    assert [c["provider"] for c in (await _listed(api))["items"]] == ["google"]


@pytest.mark.parametrize(
    ("provider", "body", "path", "says"),
    [
        ("ollama", {"api_key": SECRET}, "path.provider", "expected one of ['google', 'openai',"),
        ("openai", {}, "body.api_key", "Field required"),
        ("openai", {"api_key": ""}, "body.api_key", "non-empty"),
        ("openai", {"api_key": SECRET + " x"}, "body.api_key", "without spaces"),
        ("openai", {"api_key": 42}, "body.api_key", "valid string"),
        ("openai", {"api_key": SECRET, "base_url": "file:///etc"}, "body.base_url", "http(s)"),
        ("openai", {"api_key": SECRET, "base_url": "http://10.1.2.3/v1"}, "body.base_url",
         "private"),
        ("google", {"api_key": SECRET, "base_url": "https://x.example"}, "body.base_url",
         "OpenAI-compatible"),
        ("openai", {"api_key": SECRET, "org": "x"}, "body.org", "Extra inputs"),
        ("p" * 65, {"api_key": SECRET}, "path.provider", "at most 64"),
    ],
    ids=["provider", "missing", "empty", "space", "number", "scheme", "private", "google-url",
         "extra", "long-provider"],
)  # fmt: skip
async def test_bad_input_is_422_naming_the_field_never_the_key(
    api: Any, provider: str, body: dict[str, Any], path: str, says: str
) -> None:
    r = await api.client.put(f"/v1/credentials/{provider}", json=body, headers=api.auth())
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"][0]["path"] == path
    assert says in error["message"]
    assert SECRET not in r.text
    assert (await _listed(api))["items"] == []  # nothing stored


async def test_without_secret_keys_storing_is_refused_with_how_to_make_one(
    api_factory: Any,
) -> None:
    async with api_factory() as api:
        r = await api.client.put(
            "/v1/credentials/openai", json={"api_key": SECRET}, headers=api.auth()
        )
        assert r.status_code == 503, r.text
        error = r.json()["error"]
        assert error["code"] == "credentials_unavailable"
        assert "crewchief credentials keygen" in error["message"] and SECRET not in r.text
        assert (await _listed(api))["items"] == []
