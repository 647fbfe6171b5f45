"""Budgets, quotas and plans through the real app: calls made at once never spend past a
hard budget, every route that spends is held to it (admin keys too), an exhausted
downgrading budget answers with the cheaper model, and the 80 % warning is said.

The upstream is the fake OpenAI-compatible server on loopback; its answers are cut to
``max_tokens`` words and it counts one completion token per word, so with a free prompt
(input price 0) each answer costs exactly its reservation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.fake_openai import FakeOpenAIThread
from crewchief.api import create_app
from crewchief.db.keys import create_key
from tests.conftest import make_settings

# $1000 per million output tokens: $0.001 a token; two-token answers cost $0.002.
PRICE = {"input": 0.0, "output": 1000.0}
ANSWER_USD = 0.002
ASK = {"model": "up:cheap", "max_tokens": 2,
       "messages": [{"role": "user", "content": "say hello world again please"}]}  # fmt: skip


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAIThread]:
    with FakeOpenAIThread() as fake:
        yield fake


@pytest.fixture(autouse=True)
def _real_upstream(monkeypatch: pytest.MonkeyPatch) -> None:
    # The only upstream is the fake on loopback.
    monkeypatch.setenv("CREWCHIEF_ALLOW_MODEL_REQUESTS", "1")
    monkeypatch.setenv("UP_KEY", "sk-platform")


class App:
    def __init__(self, client: httpx.AsyncClient, keys: dict[str, str], chief: Any):
        self.client, self.keys, self.chief = client, keys, chief

    def auth(self, who: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[who]}"}

    async def chat(self, who: str = "alice", **body: Any) -> httpx.Response:
        return await self.client.post(
            "/v1/chat/completions", json={**ASK, **body}, headers=self.auth(who)
        )


@contextlib.asynccontextmanager
async def app_with(
    tmp_path: Path, upstream: FakeOpenAIThread, **overrides: Any
) -> AsyncIterator[App]:
    settings = make_settings(
        tmp_path / "home",
        providers={
            "up": {"type": "openai", "base_url": upstream.base_url, "api_key_env": "UP_KEY"}
        },
        prices={"up:cheap": PRICE, "up:embed": {"input": 1000.0, "output": 0.0}},
        gateway={"rewrite": False, "embeddings_model": "up:embed"},
        knowledge={"memory": False, "profiles": False},
        **overrides,
    )
    app = create_app(settings, auth=True)
    async with app.router.lifespan_context(app):
        chief = app.state.chief
        store = chief.services.store
        keys = {}
        for who, tier in (("alice", None), ("bob", None), ("root", "ops"), ("fre", "free")):
            if tier is not None and tier not in settings.plans:
                continue
            info, keys[who] = await create_key(store, name=who, owner=who, tier=tier)
            keys[who + "_id"] = info.id
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api", timeout=60) as c:
            yield App(c, keys, chief)


async def spent(app: App, who: str = "alice") -> tuple[float, float]:
    """(the ledger's cost of the caller's calls, the budget counter's spend)."""
    usage = (await app.client.get("/v1/usage", headers=app.auth(who))).json()
    budgets = (await app.client.get("/v1/budgets", headers=app.auth(who))).json()
    counter = next(c for c in budgets["counters"] if c["period"] == "day")
    return usage["totals"]["cost_usd"], counter["spent_usd"]


async def test_fifty_requests_at_once_spend_no_more_than_the_budget(
    tmp_path: Path, upstream: FakeOpenAIThread
) -> None:
    async with app_with(tmp_path, upstream) as app:
        r = await app.client.put("/v1/budgets/key", json={"daily_usd": 10 * ANSWER_USD},
                                 headers=app.auth())  # fmt: skip
        assert r.status_code == 200, r.text
        answers = await asyncio.gather(*(app.chat() for _ in range(50)))
        codes = sorted(a.status_code for a in answers)
        assert codes.count(200) == 10 and codes.count(402) == 40, codes
        refused = next(a for a in answers if a.status_code == 402).json()["error"]
        assert refused["code"] == "budget_exceeded" and refused["type"] == "insufficient_quota"
        assert refused["limit_usd"] == pytest.approx(0.02) and refused["period"] == "day"
        assert refused["resets_at"].endswith("T00:00:00Z") and "$0.02" in refused["message"]
        ledger, counter = await spent(app)
        assert ledger == pytest.approx(counter) and counter <= 10 * ANSWER_USD + 1e-12
        assert counter == pytest.approx(10 * ANSWER_USD)
        # Bob's key is his own: Alice's budget does not touch it.
        assert (await app.chat("bob")).status_code == 200


async def _stream(app: App, **body: Any) -> tuple[int, str]:
    async with app.client.stream(
        "POST", "/v1/chat/completions", json={**ASK, "stream": True, **body}, headers=app.auth()
    ) as response:
        text = "".join([part async for part in response.aiter_text()])
        return response.status_code, text


async def test_fifty_streams_at_once_and_streams_cut_short(
    tmp_path: Path, upstream: FakeOpenAIThread
) -> None:
    async with app_with(tmp_path, upstream) as app:
        await app.client.put("/v1/budgets/owner", json={"daily_usd": 10 * ANSWER_USD},
                             headers=app.auth())  # fmt: skip
        # Every fifth stream the upstream cuts after two chunks: it is charged for what it
        # streamed until then (its prompt, free here, and the words it sent).
        upstream.clear_script()
        upstream.script(*({"cut_after_chunks": 2} if i % 5 == 0 else {} for i in range(50)))
        results = await asyncio.gather(*(_stream(app) for _ in range(50)))
        ok = [text for code, text in results if code == 200]
        assert len(ok) >= 10 and sum(code == 402 for code, _ in results) == 50 - len(ok)
        ledger, counter = await spent(app)
        assert ledger == pytest.approx(counter)
        assert counter <= 10 * ANSWER_USD + 1e-12
        upstream.clear_script()


async def test_every_route_that_spends_refuses_an_exhausted_budget(
    tmp_path: Path, upstream: FakeOpenAIThread
) -> None:
    plans = {"ops": {"admin": True}}
    async with app_with(tmp_path, upstream, plans=plans) as app:
        for who in ("alice", "root"):  # an admin key is held to its budget like any other
            await app.chief.set_budget("owner", who, daily_usd=0.0)
            chat = await app.chat(who)
            assert chat.status_code == 402 and chat.json()["error"]["code"] == "budget_exceeded"
            async with app.client.stream(
                "POST", "/v1/chat/completions", json={**ASK, "stream": True},
                headers=app.auth(who),
            ) as stream:  # fmt: skip
                assert stream.status_code == 402
            emb = await app.client.post("/v1/embeddings", json={"input": "hello"},
                                        headers=app.auth(who))  # fmt: skip
            assert emb.status_code == 402, emb.text
            op = await app.client.post("/v1/operations", json={"request": "hi"},
                                       headers=app.auth(who))  # fmt: skip
            assert op.status_code == 402 and op.json()["error"]["code"] == "budget_exceeded"
        assert (await spent(app))[1] == 0.0
        upstream.clear_requests()


async def test_a_downgrading_budget_answers_with_the_cheaper_model(
    tmp_path: Path, upstream: FakeOpenAIThread
) -> None:
    async with app_with(tmp_path, upstream, budgets={"downgrade_model": "up:free"}) as app:
        r = await app.client.put(
            "/v1/budgets/owner", json={"daily_usd": 0.0, "on_exceed": "downgrade"},
            headers=app.auth(),
        )  # fmt: skip
        assert r.status_code == 200 and r.json()["set_by"] == "owner"
        answer = await app.chat()
        assert answer.status_code == 200, answer.text
        meta = answer.json()["x_crewchief"]
        assert meta["model"] == "up:free" and meta["budget"]["downgraded_from"] == "up:cheap"
        assert meta["cost_usd"] == 0.0


async def test_the_warning_comes_when_the_spend_crosses_eighty_percent(
    tmp_path: Path, upstream: FakeOpenAIThread
) -> None:
    async with app_with(tmp_path, upstream) as app:
        await app.client.put("/v1/budgets/key", json={"daily_usd": 10 * ANSWER_USD},
                             headers=app.auth())  # fmt: skip
        notices = []
        for _ in range(9):
            answer = await app.chat()
            notices.append((answer.json()["x_crewchief"]["budget"] or {}).get("notices"))
        assert notices[:7] == [None] * 7
        (warning,) = notices[7]
        assert warning["kind"] == "warning" and warning["spent_usd"] == pytest.approx(0.016)
        assert notices[8] is None  # said once, when crossed


async def test_a_plan_binds_models_efforts_quotas_and_rate(
    tmp_path: Path, upstream: FakeOpenAIThread
) -> None:
    free = {"models": ["up:free", "up:cheap"], "efforts": ["low"], "requests_per_day": 3,
            "rate_limit_per_minute": 100}  # fmt: skip
    async with app_with(tmp_path, upstream, plans={"free": free}) as app:
        refused = await app.chat("fre", model="up:dear")
        assert refused.status_code == 403
        assert refused.json()["error"]["code"] == "model_not_allowed"
        upstream.clear_requests()
        assert (await app.chat("fre", reasoning_effort="high")).status_code == 200
        assert upstream.requests[-1]["body"]["reasoning_effort"] == "low"
        assert (await app.chat("fre")).status_code == 200
        assert (await app.chat("fre")).status_code == 200
        over = await app.chat("fre")
        assert over.status_code == 429 and over.json()["error"]["code"] == "quota_exceeded"
        assert int(over.headers["Retry-After"]) > 0
        status = (await app.client.get("/v1/budgets", headers=app.auth("fre"))).json()
        assert status["plan"] == "free"
        quota = next(c for c in status["counters"] if c["unit"] == "requests")
        assert quota["limit_count"] == 3 and quota["remaining_count"] == 0


async def test_owners_set_their_own_limits_but_not_the_operators(
    tmp_path: Path, upstream: FakeOpenAIThread
) -> None:
    async with app_with(tmp_path, upstream, plans={"ops": {"admin": True}}) as app:
        await app.chief.set_budget("owner", "alice", daily_usd=5.0)  # the operator's
        locked = await app.client.put("/v1/budgets/owner", json={"daily_usd": 500.0},
                                      headers=app.auth())  # fmt: skip
        assert locked.status_code == 409 and locked.json()["error"]["code"] == "budget_locked"
        other = await app.client.put(
            "/v1/budgets/key", json={"daily_usd": 1.0, "subject": app.keys["bob_id"]},
            headers=app.auth(),
        )  # fmt: skip
        assert other.status_code == 404
        bad = await app.client.put("/v1/budgets/key", json={"daily_usd": -1},
                                   headers=app.auth())  # fmt: skip
        assert bad.status_code == 422 and "daily_usd" in bad.json()["error"]["message"]
        by_admin = await app.client.put(
            "/v1/budgets/owner", json={"daily_usd": 7.0, "subject": "alice"},
            headers=app.auth("root"),
        )  # fmt: skip
        assert by_admin.status_code == 200 and by_admin.json()["set_by"] == "operator"
        assert (
            await app.client.get("/v1/budgets?owner=bob", headers=app.auth())
        ).status_code == 403
        seen = (await app.client.get("/v1/budgets", headers=app.auth())).json()
        assert [b["daily_usd"] for b in seen["budgets"]] == [7.0]


def test_the_cli_creates_keys_on_a_plan_and_shows_their_budgets(tmp_path: Path) -> None:
    import subprocess
    import sys

    home = tmp_path / "home"
    config = tmp_path / "crewchief.toml"
    config.write_text("[plans.free]\nrequests_per_day = 50\n[plans.free.budget]\ndaily_usd = 1.5\n")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "crewchief.cli", "--config", str(config), "--home", str(home),
             *args], capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    made = cli("keys", "create", "--owner", "carol", "--tier", "free", "--monthly-usd", "20",
               "--json")  # fmt: skip
    assert made.returncode == 0, made.stderr
    key = json.loads(made.stdout)
    assert key["tier"] == "free"
    wrong = cli("keys", "create", "--owner", "dave", "--tier", "gold")
    assert wrong.returncode == 2 and "no plan 'gold'" in wrong.stderr and "free" in wrong.stderr
    shown = cli("budgets", "show", "--key", key["id"], "--json")
    assert shown.returncode == 0, shown.stderr
    report = json.loads(shown.stdout)
    limits = {(c["source"], c["period"], c["unit"]): c for c in report["counters"]}
    assert limits[("plan:free", "day", "usd")]["limit_usd"] == 1.5
    assert limits[("key", "month", "usd")]["limit_usd"] == 20.0
    assert limits[("plan:free", "day", "requests")]["limit_count"] == 50
    table = cli("budgets", "show", "--key", key["id"])
    assert "plan free" in table.stdout and "$1.5000" in table.stdout


@pytest.mark.postgres
async def test_two_instances_on_postgres_share_one_budget(
    tmp_path: Path, upstream: FakeOpenAIThread, postgres_url: str
) -> None:
    """Scaled mode: each API instance reserves through its own database connection; the
    counters' row locks keep the budget whole across them."""
    async with app_with(tmp_path, upstream, database_url=postgres_url) as a:
        await a.chief.set_budget("key", a.keys["alice_id"], daily_usd=10 * ANSWER_USD)
        settings = a.chief.settings
        other = create_app(settings, auth=True)
        async with other.router.lifespan_context(other):
            transport = httpx.ASGITransport(app=other)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as b:
                second = App(b, a.keys, other.state.chief)
                answers = await asyncio.gather(
                    *((a if i % 2 else second).chat() for i in range(50))
                )
                codes = [r.status_code for r in answers]
                assert codes.count(200) == 10 and codes.count(402) == 40, codes
                ledger, counter = await spent(second)
                assert ledger == pytest.approx(counter) == pytest.approx(10 * ANSWER_USD)


async def test_the_openai_sdk_sees_the_refusal_with_its_figures(
    tmp_path: Path, upstream: FakeOpenAIThread
) -> None:
    import openai

    async with app_with(tmp_path, upstream) as app:
        await app.chief.set_budget("key", app.keys["alice_id"], daily_usd=0.001)
        sdk = openai.AsyncOpenAI(
            base_url="http://api/v1", api_key=app.keys["alice"], max_retries=0,
            http_client=app.client,
        )  # fmt: skip
        with pytest.raises(openai.APIStatusError) as refused:
            await sdk.chat.completions.create(**ASK)
        assert refused.value.status_code == 402
        assert refused.value.body["code"] == "budget_exceeded"
        assert refused.value.body["limit_usd"] == 0.001 and refused.value.body["spent_usd"] == 0


async def test_calls_on_the_owners_own_key_are_not_held_to_the_platforms_budget(
    tmp_path: Path, upstream: FakeOpenAIThread
) -> None:
    from cryptography.fernet import Fernet

    key = Fernet.generate_key().decode()
    async with app_with(tmp_path, upstream, secret_keys=[key]) as app:
        await app.chief.set_budget("owner", "alice", daily_usd=0.0)
        assert (await app.chat()).status_code == 402
        put = await app.client.put(
            "/v1/credentials/up", json={"api_key": "sk-alice-own-0123456789"}, headers=app.auth()
        )
        assert put.status_code == 200, put.text
        answer = await app.chat()
        assert answer.status_code == 200, answer.text
        assert answer.json()["x_crewchief"]["credentials"] == "owner"
        usage = (await app.client.get("/v1/usage?group_by=paid_by", headers=app.auth())).json()
        assert {r["group"]["paid_by"] for r in usage["rows"]} == {"owner"}
        assert (await spent(app))[1] == 0.0  # the budget's counter saw none of it


async def test_an_admin_key_reads_another_owners_usage_and_others_do_not(
    tmp_path: Path, upstream: FakeOpenAIThread
) -> None:
    async with app_with(tmp_path, upstream, plans={"ops": {"admin": True}}) as app:
        assert (await app.chat("bob")).status_code == 200
        theirs = await app.client.get("/v1/usage?owner=bob", headers=app.auth("root"))
        assert theirs.status_code == 200 and theirs.json()["totals"]["calls"] == 1
        refused = await app.client.get("/v1/usage?owner=bob", headers=app.auth("alice"))
        assert refused.status_code == 403


async def test_a_plans_rate_limit_replaces_the_default_for_its_keys(
    tmp_path: Path, upstream: FakeOpenAIThread
) -> None:
    async with app_with(tmp_path, upstream, plans={"free": {"rate_limit_per_minute": 2}}) as app:
        codes = [(await app.chat("fre")).status_code for _ in range(3)]
        assert codes == [200, 200, 429]
        assert (await app.chat("alice")).status_code == 200  # the default plan-less limit
