"""Operations listed by route, key, period and text, with their cost; counted by route and
status: the same answers from SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from crewchief import Crewchief, InvalidRequest
from crewchief.config import Settings
from tests.conftest import write_script

OLD = datetime(2020, 1, 1, 12, tzinfo=UTC)


def _insert_unrouted(tx) -> None:
    """An operation as stored before routes were decided up front: no route yet."""
    tx.execute(
        "INSERT INTO operations (id, request, status, route_forced, owner, created_at,"
        " updated_at, planning_input_tokens, planning_output_tokens, planning_reasoning_tokens,"
        " input_tokens, output_tokens, reasoning_tokens) VALUES ('old-op', 'legacy caching job',"
        " 'completed', :no, 'alice', :at, :at, 0, 0, 0, 0, 0, 0)",
        {"no": tx.flag(False), "at": tx.ts(OLD)},
    )


@pytest.fixture
async def chief(backend_settings: Settings, tmp_path: Path):
    spec = write_script(
        tmp_path, [{"node": "fast_path", "match": "fix", "reply": {"text": "fixed", "cost": 0.25}}]
    )
    models = {"fast": spec, "orchestrator": spec, "delegate": spec}
    async with Crewchief(backend_settings, models=models) as cc:
        yield cc


async def test_filters_combine_and_each_operation_says_what_it_cost(chief: Crewchief) -> None:
    run = chief.run
    a = (await run("Add a section on Caching", route="fast", owner="alice", api_key_id="k1")).id
    b = (await run("fix the cache_key bug", route="fast", owner="alice", api_key_id="k2")).id
    c = await run(
        "Plan the caching rollout", route="plan", approve_plan=True, owner="alice", api_key_id="k1"
    )
    assert c.status == "awaiting_approval"
    c = c.id
    await run("caching for bob", route="fast", owner="bob")
    await chief.services.store.run(_insert_unrouted)

    async def ids(**filters) -> list[str]:
        return [o.id for o in await chief.list(owner="alice", **filters)]

    assert await ids() == [c, b, a, "old-op"]
    assert await ids(q="CACHING") == [c, a, "old-op"]  # the request, ignoring case
    assert await ids(q="cache_key") == [b]
    assert await ids(q="%") == []  # taken literally, not as a wildcard
    assert await ids(q=b[:8].upper()) == [b]  # the start of an id
    assert await ids(route="fast") == [b, a]
    assert await ids(route="plan") == [c]
    assert await ids(route="undecided") == ["old-op"]
    assert await ids(key="k1") == [c, a]
    assert await ids(since="2021-01-01") == [c, b, a]
    assert await ids(since="1h") == [c, b, a]
    assert await ids(until="2020-01-01") == ["old-op"]  # a date includes its day
    assert await ids(status="completed", route="fast", key="k1") == [a]
    assert await ids(q="caching", since="2021-01-01", status="awaiting_approval") == [c]

    # Paging keeps the filters.
    first = await chief.list(owner="alice", q="caching", limit=2)
    rest = await chief.list(
        owner="alice", q="caching", limit=2, before=(first[-1].created_at, first[-1].id)
    )
    assert [o.id for o in first + rest] == [c, a, "old-op"]

    by_id = {o.id: o for o in await chief.list(owner="alice")}
    assert by_id[b].cost_usd == 0.25 and by_id[a].cost_usd == 0.0
    assert by_id[b].api_key_id == "k2" and by_id["old-op"].api_key_id is None
    assert by_id[a].simplicity_score is not None and by_id["old-op"].simplicity_score is None
    assert by_id[b].updated_at >= by_id[b].created_at
    assert by_id["old-op"].updated_at == OLD


async def test_counts_by_route_and_status(chief: Crewchief) -> None:
    await chief.run("one", route="fast", owner="alice")
    await chief.run("two", route="plan", approve_plan=True, owner="alice")
    await chief.run("three", route="fast", owner="bob")
    await chief.services.store.run(_insert_unrouted)

    alice = await chief.operation_stats(owner="alice")
    assert alice.total == 3
    assert alice.by_route == {"fast": 1, "plan": 1, "undecided": 1}
    assert alice.by_status == {
        "running": 0, "awaiting_approval": 1, "completed": 2,
        "failed": 0, "cancelled": 0, "rejected": 0,
    }  # fmt: skip
    recent = await chief.operation_stats(owner="alice", since="2021-01-01")
    assert (recent.total, recent.by_route["undecided"]) == (2, 0)
    assert recent.since == datetime(2021, 1, 1, tzinfo=UTC) and recent.until is None
    everyone = await chief.operation_stats()
    assert everyone.total == 4 and everyone.by_route["fast"] == 2
    nobody = await chief.operation_stats(until="2019-12-31")
    assert nobody.total == 0 and set(nobody.by_route.values()) == {0}


@pytest.mark.parametrize(
    ("call", "path"),
    [
        ({"route": "slow"}, "route"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2021-01-02", "until": "2021-01-01"}, "until"),
        ({"q": "  "}, "q"),
        ({"key": "k" * 201}, "key"),
    ],
)
async def test_a_bad_filter_is_refused_naming_it(chief: Crewchief, call: dict, path: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        await chief.list(**call)
    assert refused.value.details[0]["path"] == path
    assert str(refused.value).startswith(f"{path}: ")
    if path in ("since", "until"):
        with pytest.raises(InvalidRequest, match=f"^{path}: "):
            await chief.operation_stats(**call)
