"""`GET /v1/operations` filtered by route, key, period and text, each item with its key,
simplicity score, cost and last change; `GET /v1/operations/stats`; bad input refused
naming the field."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from crewchief.db.keys import create_key
from tests.conftest import write_script


async def _run(api, request: str, headers: dict, **extra) -> str:
    r = await api.client.post("/v1/operations", json={"request": request, **extra}, headers=headers)
    assert r.status_code == 202, r.text
    op = r.json()["id"]
    for _ in range(250):  # hang guard: ~5 s
        r = await api.client.get(f"/v1/operations/{op}", headers=headers)
        if r.json()["status"] in ("completed", "awaiting_approval"):
            return op
        await asyncio.sleep(0.02)
    raise AssertionError(f"{op} is still {r.json()['status']}")


@pytest.fixture
async def filtered(api_factory, tmp_path: Path):
    """alice's operations from two keys (one costing $0.25, one awaiting plan approval),
    and one of bob's."""
    spec = write_script(
        tmp_path, [{"node": "fast_path", "match": "fix", "reply": {"text": "ok", "cost": 0.25}}]
    )
    async with api_factory(models=spec) as api:
        store = api.app.state.chief.services.store
        second, secret = await create_key(store, name="alice-ci", owner="alice")
        ci = {"Authorization": f"Bearer {secret}"}
        ops = {
            "readme": await _run(api, "Add a README section on Caching", api.auth(), route="fast"),
            "fix": await _run(api, "fix the cache_key bug", ci, route="fast"),
            "plan": await _run(
                api, "Plan the caching rollout", api.auth(), route="plan", approve_plan=True
            ),
            "bob": await _run(api, "caching for bob", api.auth("bob"), route="fast"),
        }
        yield api, ops, second.id


async def _ids(api, query: str, owner: str = "alice") -> list[str]:
    r = await api.client.get(f"/v1/operations?{query}", headers=api.auth(owner))
    assert r.status_code == 200, r.text
    return [i["id"] for i in r.json()["items"]]


async def test_filters_combine_with_status_and_paging(filtered) -> None:
    api, ops, ci_key = filtered
    readme, fix, plan = ops["readme"], ops["fix"], ops["plan"]
    assert await _ids(api, "route=fast") == [fix, readme]  # bob's is not alice's
    assert await _ids(api, "route=plan") == [plan]
    assert await _ids(api, "route=undecided") == []
    assert await _ids(api, f"key={ci_key}") == [fix]
    assert await _ids(api, "q=caching") == [plan, readme]
    assert await _ids(api, "q=CACHE_KEY") == [fix]
    assert await _ids(api, f"q={fix[:6]}") == [fix]
    assert await _ids(api, "since=1h") == [plan, fix, readme]
    assert await _ids(api, "since=2999-01-01") == []
    assert await _ids(api, "until=2020-01-01") == []
    assert await _ids(api, "status=completed&q=caching") == [readme]
    assert await _ids(api, "status=awaiting_approval&route=fast") == []

    first = (await api.client.get("/v1/operations?q=caching&limit=1", headers=api.auth())).json()
    assert [i["id"] for i in first["items"]] == [plan] and first["next_cursor"]
    rest = await _ids(api, f"q=caching&limit=1&cursor={first['next_cursor']}")
    assert rest == [readme]


async def test_items_say_who_started_them_their_score_and_cost(filtered) -> None:
    api, ops, ci_key = filtered
    r = await api.client.get("/v1/operations", headers=api.auth())
    items = {i["id"]: i for i in r.json()["items"]}
    fix, readme = items[ops["fix"]], items[ops["readme"]]
    assert fix["cost_usd"] == 0.25 and readme["cost_usd"] == 0.0
    assert fix["api_key_id"] == ci_key and readme["api_key_id"].startswith("key_")
    assert readme["api_key_id"] != ci_key
    assert 0 <= readme["simplicity_score"] <= 1 and readme["route"] == "fast"
    assert readme["updated_at"] >= readme["created_at"]


async def test_stats_count_the_callers_operations_by_route_and_status(filtered) -> None:
    api, _, _ = filtered
    r = await api.client.get("/v1/operations/stats", headers=api.auth())
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 3 and body["since"] is None and body["until"] is None
    assert body["by_route"] == {"fast": 2, "plan": 1, "undecided": 0}
    assert body["by_status"] == {
        "running": 0, "awaiting_approval": 1, "completed": 2,
        "failed": 0, "cancelled": 0, "rejected": 0,
    }  # fmt: skip
    bob = (await api.client.get("/v1/operations/stats", headers=api.auth("bob"))).json()
    assert bob["total"] == 1 and bob["by_route"]["fast"] == 1
    later = await api.client.get("/v1/operations/stats?since=2999-01-01", headers=api.auth())
    assert later.json()["total"] == 0 and later.json()["since"].startswith("2999-01-01T00:00:00")


async def test_keyless_dev_mode_counts_every_owners_operations(api_factory) -> None:
    async with api_factory() as keyed:
        database = keyed.settings.resolved_database_url
        for owner in ("alice", "bob"):
            await _run(keyed, "a question", keyed.auth(owner), route="fast")
    async with api_factory(auth=False, database_url=database) as api:  # no keys now
        r = await api.client.get("/v1/operations/stats", headers={"Host": "localhost"})
        assert r.status_code == 200, r.text
        assert r.json()["total"] == 2


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ("route=slow", "query.route"),
        ("since=yesterday", "query.since"),
        ("until=2026-13-01", "query.until"),
        ("since=2026-01-02&until=2026-01-01", "query.until"),
        ("q=", "query.q"),
        ("q=%20%20", "query.q"),
        ("key=" + "k" * 201, "query.key"),
    ],
)
async def test_a_bad_filter_is_refused_naming_it(api, query: str, path: str) -> None:
    for url in ("/v1/operations", "/v1/operations/stats"):
        if url.endswith("stats") and not query.startswith(("since", "until")):
            continue
        r = await api.client.get(f"{url}?{query}", headers=api.auth())
        assert r.status_code == 422, (url, r.text)
        error = r.json()["error"]
        assert error["code"] == "invalid_request" and error["message"].startswith(f"{path}: ")
        assert error["details"][0]["path"] == path
