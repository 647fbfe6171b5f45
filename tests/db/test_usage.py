"""The usage ledger on each backend: every call's cost recorded with its owner and key, and
reports summed, filtered and grouped by the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from crewchief.client.facade import Crewchief
from crewchief.config import PriceConfig, Settings
from crewchief.errors import InvalidRequest
from crewchief.models.types import CallInfo, CallRecord, Cost, Usage
from tests.conftest import write_script

USAGE = {"input": 1000, "output": 200, "reasoning": 100, "cached_input": 400}
PRICE = PriceConfig(input=1.0, output=2.0, cached_input=0.5, reasoning=4.0)
# 600 fresh and 400 cached prompt tokens; 200 answer and 100 reasoning tokens.
PRICED = (600 * 1.0 + 400 * 0.5 + 200 * 2.0 + 100 * 4.0) / 1e6


def close(a: float, b: float) -> bool:
    # Not pytest.approx: it looks at numpy, which a background thread may be importing.
    return abs(a - b) < 1e-9


def _gateway_call(owner: str, key: str, role: str, usd: float) -> CallRecord:
    info = CallInfo(
        node="gateway", purpose=f"gateway:{role}", owner=owner, api_key_id=key, role=role
    )
    usage = Usage(2000, 100)
    return CallRecord(
        info, "gateway", "openai:gpt-4o-mini", "none", usage, 5.0, None, Cost(usd, "table")
    )


@pytest.fixture
async def ledger(backend_settings: Settings, tmp_path: Path):
    """Three operations (alice's priced by the table, bob's stating its cost, one of the
    library on an unpriced model) and two gateway calls of alice's."""
    spec = write_script(
        tmp_path,
        [
            {"node": "fast_path", "match": "priced", "reply": {"text": "a", "usage": USAGE}},
            {"node": "fast_path", "match": "stated", "reply": {"text": "b", "cost": 0.25}},
        ],
    )
    settings = backend_settings.model_copy(update={"prices": {spec: PRICE}})
    models = {"orchestrator": spec, "delegate": spec, "fast": spec}
    async with Crewchief(settings, models=models) as cc:
        ops = {}
        for name, request, owner, key, override in (
            ("alice", "a priced question", "alice", "k-alice", None),
            ("bob", "a stated question", "bob", "k-bob", None),
            ("library", "a library question", None, None, {"orchestrator": "fake:default"}),
        ):
            handle = await cc.start(
                request, route="fast", owner=owner, api_key_id=key, models=override
            )
            assert (await handle.wait()).status == "completed"
            ops[name] = handle.id
        await cc.record_call(_gateway_call("alice", "k-alice-2", "architect", 0.001))
        await cc.record_call(_gateway_call("alice", "k-alice-2", "review", 0.002))
        yield cc, ops, spec


async def test_an_operation_shows_its_cost_per_model_and_in_total(ledger) -> None:
    cc, ops, spec = ledger
    alice = await cc.get(ops["alice"])
    (model,) = alice.usage_by_model
    assert (model.model, model.cached_input, model.reasoning) == (spec, 400, 100)
    assert close(model.cost_usd, PRICED) and model.unpriced_calls == 0
    assert close(alice.cost_usd, PRICED) and alice.unpriced_calls == 0
    assert (await cc.get(ops["bob"])).cost_usd == 0.25  # the reply's own figure
    library = await cc.get(ops["library"])
    assert library.cost_usd == 0.0 and library.unpriced_calls == 1


async def test_usage_is_grouped_by_owner_key_role_and_model(ledger) -> None:
    cc, ops, spec = ledger
    by_owner = await cc.usage(group_by="owner")
    assert {r.group["owner"]: r.calls for r in by_owner.rows} == {"alice": 3, "bob": 1, None: 1}
    costs = {r.group["owner"]: r.cost_usd for r in by_owner.rows}
    assert close(costs["alice"], PRICED + 0.003) and costs["bob"] == 0.25 and costs[None] == 0
    assert by_owner.totals.calls == 5 and by_owner.totals.unpriced_calls == 1
    assert close(by_owner.totals.cost_usd, PRICED + 0.253)
    assert by_owner.prices_as_of == "2025-08"
    # One owner's report holds nothing of another's.
    alice = await cc.usage(group_by=["key", "role"], owner="alice")
    assert {(r.group["key"], r.group["role"]): r.calls for r in alice.rows} == {
        ("k-alice", None): 1,  # the operation's call: the key that started it
        ("k-alice-2", "architect"): 1,
        ("k-alice-2", "review"): 1,
    }
    assert alice.totals.input_tokens == 1000 + 2 * 2000
    assert alice.totals.cached_input_tokens == 400
    # The most expensive first: review ($0.002), the operation ($0.0016), architect ($0.001).
    assert [r.group["role"] for r in alice.rows] == ["review", None, "architect"]
    library = await cc.usage(owner=None)
    assert [(r.group, r.calls, r.unpriced_calls) for r in library.rows] == [({}, 1, 1)]
    models = await cc.usage(group_by="model,alias")
    assert {(r.group["model"], r.group["alias"]) for r in models.rows} == {
        (spec, "orchestrator"),
        ("fake:default", "orchestrator"),
        ("openai:gpt-4o-mini", "gateway"),
    }


async def test_usage_by_day_operation_and_task_with_filters(ledger) -> None:
    cc, ops, spec = ledger
    today = datetime.now(UTC).date()
    days = await cc.usage(group_by="day")
    assert [(r.group, r.calls) for r in days.rows] == [({"day": today.isoformat()}, 5)]
    tasks = await cc.usage(group_by="task", operation_id=ops["alice"])
    assert [r.group for r in tasks.rows] == [{"operation": ops["alice"], "task": None}]
    assert (await cc.usage(model="fake:default")).totals.calls == 1
    assert (await cc.usage(role="review")).totals.cost_usd == 0.002
    assert (await cc.usage(key="k-bob")).totals.cost_usd == 0.25
    assert (await cc.usage(since=today)).totals.calls == 5
    assert (await cc.usage(until=today)).totals.calls == 5  # a date includes its day
    assert (await cc.usage(since=today + timedelta(days=1))).rows == []
    assert (await cc.usage(until=datetime.now(UTC) - timedelta(hours=1))).rows == []
    assert (await cc.usage(since="1h", until="2999-01-01")).totals.calls == 5


async def test_bad_questions_name_the_field(ledger) -> None:
    cc, _, _ = ledger
    with pytest.raises(InvalidRequest, match="group_by: unknown grouping 'week'"):
        await cc.usage(group_by="model,week")
    with pytest.raises(InvalidRequest, match="since: expected a date"):
        await cc.usage(since="last tuesday")
    with pytest.raises(InvalidRequest, match="until: expected a time after since"):
        await cc.usage(since="2026-03-02", until="2026-03-01T10:00:00Z")
    with pytest.raises(InvalidRequest, match="model: expected a string of 1 to 200"):
        await cc.usage(model="")
