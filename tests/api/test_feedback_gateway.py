"""Feedback on the gateway's answers, through the real app with a fake OpenAI-compatible
upstream on loopback: every answer (streamed, cached, for `model: auto`) has an
`x_crewchief.id` to rate it by, regenerated answers become preference pairs, and
`DELETE /v1/memory` deletes the answers and their ratings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bench.fake_openai import FakeOpenAIThread

QUESTION = [{"role": "user", "content": "How do I memoize a function in Python?"}]


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIThread]:
    # Real requests are allowed: the only upstream is the fake on loopback.
    monkeypatch.setenv("CREWCHIEF_ALLOW_MODEL_REQUESTS", "1")
    with FakeOpenAIThread() as fake:
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-upstream")
        yield fake


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The app database: SQLite, or PostgreSQL (both stores)."""
    if request.param == "sqlite":
        return {}
    return {"database_url": request.getfixturevalue("postgres_url")}


def gateway_api(api_factory: Any, **overrides: Any) -> Any:
    """An app whose models are the upstream's; prompts go as written, nothing recalled."""
    return api_factory(
        models="openai:upstream-model",
        gateway={"rewrite": False},
        knowledge={"memory": False, "profiles": False},
        **overrides,
    )


async def ask(api: Any, owner: str = "alice", headers: dict | None = None, **body: Any) -> Any:
    body = {"model": "crewchief/architect", "messages": QUESTION, **body}
    return await api.client.post(
        "/v1/chat/completions", json=body, headers={**api.auth(owner), **(headers or {})}
    )


async def rate(api: Any, rid: str, owner: str = "alice", **body: Any) -> Any:
    return await api.client.post(
        f"/v1/responses/{rid}/feedback", json=body, headers=api.auth(owner)
    )


def last_chunk(text: str) -> dict[str, Any]:
    data = [line[6:] for line in text.splitlines() if line.startswith("data: ")]
    assert data[-1] == "[DONE]"
    return json.loads(data[-2])


async def test_every_answer_is_rated_by_its_id(api_factory, upstream) -> None:
    async with gateway_api(api_factory) as api:
        r = await ask(api)
        assert r.status_code == 200, r.text
        meta = r.json()["x_crewchief"]
        assert meta["id"].startswith("resp_") and r.headers["x-crewchief-response-id"] == meta["id"]
        saved = await rate(api, meta["id"], stars=4, comment="good")
        assert saved.status_code == 201, saved.text
        rated = saved.json()
        assert (rated["target"], rated["response_id"], rated["score"]) == (
            "response", meta["id"], 0.75,
        )  # fmt: skip
        assert (rated["role"], rated["model"], rated["route"]) == (
            "architect", "openai:upstream-model", "gateway",
        )  # fmt: skip
        assert rated["simplicity_score"] is None

        streamed = await ask(api, stream=True)
        stream_id = last_chunk(streamed.text)["x_crewchief"]["id"]
        assert stream_id == streamed.headers["x-crewchief-response-id"] != meta["id"]
        assert (await rate(api, stream_id, thumb="down")).status_code == 201

        auto = await ask(api, model="auto", messages=[{"role": "user", "content": "what is 2+2?"}])
        rated = (await rate(api, auto.json()["x_crewchief"]["id"], thumb="up")).json()
        assert rated["route"] == "auto:fast" and rated["simplicity_score"] > 0.9

        # A cached answer is an answer too, with an id of its own.
        first = (await ask(api, temperature=0)).json()["x_crewchief"]
        hit = (await ask(api, temperature=0)).json()["x_crewchief"]
        assert hit["cache"]["state"] == "hit" and hit["id"] != first["id"]
        assert (await rate(api, hit["id"], thumb="up")).json()["model"] == "openai:upstream-model"

        other = await rate(api, meta["id"], owner="bob", thumb="up")
        assert other.status_code == 404 and other.json()["error"]["code"] == "response_not_found"
        listed = (await api.client.get("/v1/feedback?kind=response", headers=api.auth())).json()
        assert len(listed) == 4

        forgotten = (await api.client.delete("/v1/memory", headers=api.auth())).json()
        assert forgotten["deleted"]["gateway_responses"] == 5
        assert forgotten["deleted"]["feedback"] == 4
        gone = await rate(api, meta["id"], thumb="up")
        assert gone.status_code == 404


async def test_regenerated_answers_become_a_pair(api_factory, upstream, database) -> None:
    upstream.script({"reply": "Use a dict by hand."}, {"reply": "Use functools.lru_cache."})
    async with gateway_api(api_factory, **database) as api:
        first = (await ask(api)).json()["x_crewchief"]["id"]
        regenerated = await ask(api, headers={"Cache-Control": "no-cache"})
        second = regenerated.json()["x_crewchief"]["id"]
        export = await api.client.get("/v1/feedback/export", headers=api.auth())
        assert export.text == ""  # two answers, no evidence which one was better

        # The owner went on from the second answer.
        follow = [
            *QUESTION,
            {"role": "assistant", "content": "Use functools.lru_cache."},
            {"role": "user", "content": "And for async functions?"},
        ]
        third = (await ask(api, messages=follow)).json()
        export = await api.client.get("/v1/feedback/export", headers=api.auth())
        [pair] = [json.loads(line) for line in export.text.splitlines()]
        assert pair["source"] == "regenerated"
        assert pair["prompt"] == QUESTION
        assert (pair["chosen"], pair["rejected"]) == (
            "Use functools.lru_cache.",
            "Use a dict by hand.",
        )
        assert pair["meta"]["decided_by"] == "continuation"
        assert (pair["meta"]["chosen_response_id"], pair["meta"]["rejected_response_id"]) == (
            second, first,
        )  # fmt: skip

        # A rating outweighs the continuation; a correction adds a pair of its own.
        await rate(api, first, stars=5)
        await rate(api, third["x_crewchief"]["id"], thumb="down", correction="Use async-lru.")
        export = await api.client.get("/v1/feedback/export", headers=api.auth())
        pairs = {p["source"]: p for p in map(json.loads, export.text.splitlines())}
        assert pairs["regenerated"]["chosen"] == "Use a dict by hand."
        assert pairs["regenerated"]["meta"]["decided_by"] == "rating"
        correction = pairs["correction"]
        assert correction["prompt"] == follow
        assert correction["chosen"] == "Use async-lru."
        assert correction["rejected"] == third["choices"][0]["message"]["content"]
        assert (await api.client.get("/v1/feedback/export", headers=api.auth("bob"))).text == ""
