"""`GET /v1/gateway/requests`: the gateway's answers newest first with their latency,
fallbacks, tokens, cost and the start of the question; one owner never sees another's,
an admin key names the owner it reads; paging and filters; bad input refused naming the
field. The upstream is the fake OpenAI-compatible server on loopback."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.fake_openai import FakeOpenAIThread
from crewchief.api import create_app
from crewchief.db.keys import create_key
from tests.conftest import make_settings

# $1 per million input tokens, $1000 per million output tokens.
PRICE = {"input": 1.0, "output": 1000.0}
LONG = "Why does my cache miss? " + "The key has a timestamp in it. " * 20


@pytest.fixture
def upstream(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIThread]:
    # Real requests are allowed: the only upstream is the fake on loopback.
    monkeypatch.setenv("CREWCHIEF_ALLOW_MODEL_REQUESTS", "1")
    monkeypatch.setenv("UP_KEY", "sk-platform")
    with FakeOpenAIThread() as fake:
        yield fake


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> dict[str, Any]:
    if request.param == "sqlite":
        return {}
    return {"database_url": request.getfixturevalue("postgres_url")}


class App:
    def __init__(self, client: httpx.AsyncClient, keys: dict[str, str]):
        self.client, self.keys = client, keys

    def auth(self, who: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    async def ask(self, content: str, who: str = "alice", **body: Any) -> dict[str, Any]:
        body = {"model": "crewchief/architect", "messages": [{"role": "user", "content": content}],
                "max_tokens": 3, **body}  # fmt: skip
        r = await self.client.post("/v1/chat/completions", json=body, headers=self.auth(who))
        assert r.status_code == 200, r.text
        return r

    async def log(self, query: str = "", who: str = "alice", count: int | None = None) -> Any:
        """The request log (waiting, when ``count`` is given, until it lists that many: the
        gateway keeps its answers in the background)."""
        for _ in range(100):  # hang guard: ~2 s
            r = await self.client.get(f"/v1/gateway/requests?{query}", headers=self.auth(who))
            if count is None or r.status_code != 200 or len(r.json()["items"]) >= count:
                return r
            await asyncio.sleep(0.02)
        raise AssertionError(f"the log never listed {count}: {r.json()}")


@contextlib.asynccontextmanager
async def app_with(
    tmp_path: Path, upstream: FakeOpenAIThread, *, auth: bool = True, **overrides: Any
) -> AsyncIterator[App]:
    settings = make_settings(
        tmp_path / "home",
        providers={
            "up": {"type": "openai", "base_url": upstream.base_url, "api_key_env": "UP_KEY"}
        },
        models={
            "orchestrator": {"model": "up:strong", "fallbacks": ["up:cheap"]},
            "delegate": {"model": "up:cheap"},
            "fast": {"model": "up:cheap"},
        },
        prices={"up:strong": PRICE, "up:cheap": PRICE},
        plans={"ops": {"admin": True}},
        gateway={"rewrite": False},
        knowledge={"memory": False, "profiles": False},
        **overrides,
    )
    app = create_app(settings, auth=auth)
    async with app.router.lifespan_context(app):
        store = app.state.chief.services.store
        keys = {}
        for who, tier in (("alice", None), ("bob", None), ("root", "ops")) if auth else ():
            info, keys[who] = await create_key(store, name=who, owner=who, tier=tier)
            keys[who + "_id"] = info.id
        transport = httpx.ASGITransport(app=app)
        url = "http://api" if auth else "http://localhost"  # keyless: loopback names only
        async with httpx.AsyncClient(transport=transport, base_url=url, timeout=60) as c:
            yield App(c, keys)


async def test_each_answer_is_listed_with_what_it_took(
    tmp_path: Path, upstream: FakeOpenAIThread, database: dict[str, Any]
) -> None:
    # The strong model fails twice (its try and its retry), the cheap one answers.
    upstream.script(*[{"status": 503, "retry_after": 0, "model": "strong"}] * 2)
    async with app_with(tmp_path, upstream, **database) as app:
        first = (await app.ask(LONG, temperature=0)).json()["x_crewchief"]
        streamed = await app.ask("Stream it, please", stream=True, conversation_id="conv-1")
        again = (await app.ask(LONG, temperature=0)).json()["x_crewchief"]  # from the cache
        await app.ask("bob's question", who="bob")

        r = await app.log(count=3)
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert r.json()["next_cursor"] is None
        assert [i["id"] for i in items] == [
            again["id"], streamed.headers["x-crewchief-response-id"], first["id"],
        ]  # fmt: skip
        hit, stream, fell_back = items
        assert fell_back["model"] == "up:cheap" and fell_back["cache"] == "miss"
        assert [f["model"] for f in fell_back["fallbacks"]] == ["up:strong", "up:strong"]
        assert "503" in fell_back["fallbacks"][0]["error"]
        assert fell_back["fallbacks"] == first["fallbacks_tried"]
        tokens = first["tokens"]
        assert (fell_back["input_tokens"], fell_back["output_tokens"]) == (
            tokens["prompt"], tokens["completion"],
        )  # fmt: skip
        assert fell_back["output_tokens"] == 3
        assert fell_back["cost_usd"] == pytest.approx(first["cost_usd"]) and first["cost_usd"] > 0
        assert fell_back["latency_ms"] > 0 and fell_back["stream"] is False
        assert fell_back["question"] == LONG.strip()[:200] and len(fell_back["question"]) == 200
        assert fell_back["role"] == "architect" and fell_back["owner"] == "alice"
        assert fell_back["api_key_id"] == app.keys["alice_id"]
        assert "messages" not in fell_back and "answer" not in fell_back
        assert stream["stream"] is True and stream["conversation_id"] == "conv-1"
        assert stream["question"] == "Stream it, please" and stream["fallbacks"] == []
        assert hit["cache"] == "hit" and hit["cost_usd"] == 0.0 and hit["fallbacks"] == []

        # Pages of one, then filters.
        pages, cursor = [], ""
        for _ in range(5):  # hang guard
            page = (await app.log(f"limit=1&cursor={cursor}" if cursor else "limit=1")).json()
            pages.append(page["items"])
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert [p[0]["id"] for p in pages] == [i["id"] for i in items]
        assert (await app.log("role=review")).json()["items"] == []
        assert len((await app.log("role=architect&since=1h")).json()["items"]) == 3
        assert (await app.log("since=2999-01-01")).json()["items"] == []
        assert (await app.log("until=2020-01-01")).json()["items"] == []

        # Bob sees his own; an admin key reads any owner's, another key only its own.
        (bobs,) = (await app.log(who="bob", count=1)).json()["items"]
        assert bobs["question"] == "bob's question"
        by_admin = (await app.log("owner=bob", who="root")).json()["items"]
        assert [i["id"] for i in by_admin] == [bobs["id"]]
        mine = await app.log("owner=alice")
        assert len(mine.json()["items"]) == 3
        refused = await app.log("owner=bob")
        assert refused.status_code == 403
        assert refused.json()["error"]["details"][0]["path"] == "query.owner"


async def test_keyless_dev_mode_sees_every_owners_requests(
    tmp_path: Path, upstream: FakeOpenAIThread
) -> None:
    async with app_with(tmp_path, upstream) as app:
        await app.ask("one", who="alice")
        await app.ask("two", who="bob")
        await app.log(who="bob", count=1)
    async with app_with(tmp_path, upstream, auth=False) as app:  # the same database, no keys
        r = await app.client.get("/v1/gateway/requests")
        assert r.status_code == 200, r.text
        assert [(i["question"], i["owner"]) for i in r.json()["items"]] == [
            ("two", "bob"), ("one", "alice"),
        ]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ("since=yesterday", "query.since"),
        ("since=2026-01-02&until=2026-01-01", "query.until"),
        ("limit=0", "query.limit"),
        ("limit=101", "query.limit"),
        ("cursor=not-a-cursor", "query.cursor"),
        ("role=", "query.role"),
    ],
)
async def test_bad_input_is_refused_naming_the_field(
    tmp_path: Path, upstream: FakeOpenAIThread, query: str, path: str
) -> None:
    async with app_with(tmp_path, upstream) as app:
        r = await app.log(query)
        assert r.status_code == 422, r.text
        error = r.json()["error"]
        assert error["code"] == "invalid_request" and error["message"].startswith(f"{path}: ")
        assert error["details"][0]["path"] == path
