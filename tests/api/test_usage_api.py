"""`GET /v1/usage` and the cost on `GET /v1/operations/{id}`: grouped, filtered, totalled,
one owner never seeing another's, bad input refused naming the field."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crewchief.models.types import CallInfo, CallRecord, Cost, Usage
from tests.conftest import write_script

# 600 fresh and 400 cached prompt tokens; 200 answer and 100 reasoning tokens.
USAGE = {"input": 1000, "output": 200, "reasoning": 100, "cached_input": 400}
PRICE = {"input": 1.0, "output": 2.0, "cached_input": 0.5, "reasoning": 4.0}
PRICED = (600 * 1.0 + 400 * 0.5 + 200 * 2.0 + 100 * 4.0) / 1e6


def close(a: float, b: float) -> bool:
    return abs(a - b) < 1e-9


async def _run(api, request: str, owner: str = "alice", **extra) -> str:
    r = await api.client.post(
        "/v1/operations",
        json={"request": request, "route": "fast", **extra},
        headers=api.auth(owner),
    )
    assert r.status_code == 202, r.text
    op = r.json()["id"]
    for _ in range(250):  # hang guard: ~5 s
        r = await api.client.get(f"/v1/operations/{op}", headers=api.auth(owner))
        if r.json()["status"] == "completed":
            return op
        await asyncio.sleep(0.02)
    raise AssertionError(f"{op} never completed: {r.json()['status']}")


@pytest.fixture
async def priced_api(api_factory, tmp_path: Path):
    """An app whose model is priced by the settings (cached input and reasoning at their own
    prices), with a priced operation of alice's, one of bob's stating its cost, and an
    unpriced one of alice's on another model."""
    spec = write_script(
        tmp_path,
        [
            {"node": "fast_path", "match": "priced", "reply": {"text": "a", "usage": USAGE}},
            {"node": "fast_path", "match": "stated", "reply": {"text": "b", "cost": 0.25}},
        ],
    )
    async with api_factory(
        models=spec, prices={spec: PRICE}, api={"allowed_models": ["fake:default"]}
    ) as api:
        ops = {
            "priced": await _run(api, "a priced question"),
            "stated": await _run(api, "a stated question", owner="bob"),
            "unpriced": await _run(
                api, "an unpriced question", models={"orchestrator": "fake:default"}
            ),
        }
        yield api, ops, spec


async def test_the_operation_record_shows_cost_per_model_and_in_total(priced_api) -> None:
    api, ops, spec = priced_api
    body = (await api.client.get(f"/v1/operations/{ops['priced']}", headers=api.auth())).json()
    (model,) = body["usage_by_model"]
    assert model["model"] == spec and model["cached_input"] == 400 and model["reasoning"] == 100
    assert close(model["cost_usd"], PRICED) and model["unpriced_calls"] == 0
    assert close(body["cost_usd"], PRICED) and body["unpriced_calls"] == 0
    bob = await api.client.get(f"/v1/operations/{ops['stated']}", headers=api.auth("bob"))
    assert bob.json()["cost_usd"] == 0.25
    unpriced = await api.client.get(f"/v1/operations/{ops['unpriced']}", headers=api.auth())
    assert unpriced.json()["cost_usd"] == 0.0 and unpriced.json()["unpriced_calls"] == 1


async def test_usage_is_grouped_filtered_and_totalled(priced_api) -> None:
    api, ops, spec = priced_api
    r = await api.client.get("/v1/usage?group_by=model&group_by=day", headers=api.auth())
    assert r.status_code == 200, r.text
    body = r.json()
    today = datetime.now(UTC).date().isoformat()
    assert body["group_by"] == ["model", "day"] and body["prices_as_of"] == "2025-08"
    rows = {row["group"]["model"]: row for row in body["rows"]}
    assert set(rows) == {spec, "fake:default"}  # alice's only: bob's call is not here
    assert rows[spec]["group"]["day"] == today
    assert close(rows[spec]["cost_usd"], PRICED) and rows[spec]["cached_input_tokens"] == 400
    assert rows["fake:default"]["cost_usd"] == 0.0 and rows["fake:default"]["unpriced_calls"] == 1
    totals = body["totals"]
    assert totals["calls"] == 2 and totals["unpriced_calls"] == 1 and totals["failed_calls"] == 0
    assert close(totals["cost_usd"], PRICED)
    assert totals["reasoning_tokens"] == 100 + rows["fake:default"]["reasoning_tokens"]
    # Filters.
    by_op = await api.client.get(
        f"/v1/usage?group_by=operation,task&operation_id={ops['priced']}", headers=api.auth()
    )
    assert [row["group"] for row in by_op.json()["rows"]] == [
        {"operation": ops["priced"], "task": None}
    ]
    later = await api.client.get("/v1/usage?since=2999-01-01", headers=api.auth())
    assert later.json()["rows"] == [] and later.json()["totals"]["calls"] == 0
    earlier = await api.client.get(f"/v1/usage?until={today}&model={spec}", headers=api.auth())
    assert earlier.json()["totals"]["calls"] == 1
    keyed = await api.client.get("/v1/usage?group_by=key,owner", headers=api.auth())
    (row,) = keyed.json()["rows"]
    assert row["group"]["owner"] == "alice" and row["group"]["key"].startswith("k")
    assert row["calls"] == 2


async def test_gateway_calls_are_grouped_by_role(priced_api) -> None:
    api, _, _ = priced_api
    chief = api.app.state.chief
    for role, usd in (("architect", 0.003), ("architect", 0.001), ("review", 0.002)):
        info = CallInfo(
            node="gateway", purpose=f"gateway:{role}", owner="alice", api_key_id="k2", role=role
        )
        usage = Usage(100, 10)
        await chief.record_call(
            CallRecord(
                info, "gateway", "openai:gpt-4o", "none", usage, 1.0, None, Cost(usd, "table")
            )
        )
    r = await api.client.get("/v1/usage?group_by=role&since=1h", headers=api.auth())
    roles = [(row["group"]["role"], row["calls"], row["cost_usd"]) for row in r.json()["rows"]]
    # Alice's operations have no gateway role: their calls are the None row.
    assert roles[:2] == [("architect", 2, 0.004), ("review", 1, 0.002)]
    assert roles[2][:2] == (None, 2) and close(roles[2][2], PRICED)
    r = await api.client.get("/v1/usage?role=review&key=k2", headers=api.auth())
    assert r.json()["totals"]["cost_usd"] == 0.002
    assert (await api.client.get("/v1/usage?role=review", headers=api.auth("bob"))).json()[
        "rows"
    ] == []


async def test_one_owner_never_sees_anothers_usage(priced_api) -> None:
    api, ops, _ = priced_api
    bob = (await api.client.get("/v1/usage?group_by=operation", headers=api.auth("bob"))).json()
    assert [row["group"]["operation"] for row in bob["rows"]] == [ops["stated"]]
    assert bob["totals"]["cost_usd"] == 0.25
    # Asking for another owner's usage, or another owner's operation, shows nothing of it.
    r = await api.client.get("/v1/usage?owner=bob", headers=api.auth())
    assert r.status_code == 403 and r.json()["error"]["code"] == "forbidden"
    assert "query.owner" in r.json()["error"]["message"]
    r = await api.client.get(f"/v1/usage?operation_id={ops['stated']}", headers=api.auth())
    assert r.json()["totals"]["calls"] == 0
    mine = await api.client.get("/v1/usage?owner=alice", headers=api.auth())
    assert mine.json()["totals"]["calls"] == 2
    assert (await api.client.get("/v1/usage")).status_code == 401


async def test_keyless_dev_mode_sees_every_owner(api_factory) -> None:
    async with api_factory(auth=False) as api:
        local = {"Host": "localhost"}
        chief = api.app.state.chief
        for owner in ("alice", "bob", None):
            info = CallInfo(node="gateway", purpose="gateway:code", owner=owner, role="code")
            record = CallRecord(info, "gateway", "openai:gpt-4o", "none", Usage(10), 1.0, None)
            await chief.record_call(record)
        r = await api.client.get("/v1/usage?group_by=owner", headers=local)
        assert {row["group"]["owner"] for row in r.json()["rows"]} == {"alice", "bob", None}
        r = await api.client.get("/v1/usage?owner=bob", headers=local)
        assert r.json()["totals"]["calls"] == 1


@pytest.mark.parametrize(
    ("query", "path", "message"),
    [
        ("group_by=model,week", "query.group_by", "unknown grouping 'week'; expected one or more"),
        ("since=yesterday", "query.since", "expected a date (2026-03-01), a date and time"),
        ("until=2026-13-01", "query.until", "expected a date"),
        ("since=2026-03-02&until=2026-03-01T10:00:00Z", "query.until", "expected a time after"),
        ("since=1950-01-01", "query.since", "expected a time between 1970 and 9999"),
        ("model=", "query.model", "at least 1 character"),
        ("key=k%00", "query.key", "without NUL"),
        ("owner=" + "x" * 65, "query.owner", "at most 64 characters"),
    ],
)
async def test_bad_input_is_refused_naming_the_field(api, query, path, message) -> None:
    r = await api.client.get(f"/v1/usage?{query}", headers=api.auth())
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"][0]["path"] == path and message in error["details"][0]["message"]
    assert error["message"].startswith(path)
