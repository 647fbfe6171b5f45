"""One contract for the budget counters, run against each backend: this process's memory
(embedded mode), the app database on SQLite, and PostgreSQL shared by several processes'
connections (scaled mode)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crewchief.config import normalize_database_url
from crewchief.db.budgets import NANO, spent_since
from crewchief.db.counters import LocalCounters, SqlCounters, Want
from crewchief.db.migrate import app_store
from crewchief.db.writer import Writer

BACKENDS = ["local", "sqlite", "postgres"]


def want(counter: str = "usd:key:k1:day:x", amount: int = 10, cap: int | None = 100) -> Want:
    now = datetime.now(UTC)
    start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    return Want(counter, amount, cap, "usd", "key", "k1", start, start + timedelta(days=1))


def later(seconds: float = 600) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


@contextlib.asynccontextmanager
async def backend(kind: str, tmp_path: Path, pg: Callable[[], str]) -> AsyncIterator[Any]:
    if kind == "local":
        yield LocalCounters(lambda w: _zero())
        return
    url = f"sqlite:///{tmp_path / 'app.db'}" if kind == "sqlite" else normalize_database_url(pg())
    async with app_store(url) as store:
        yield SqlCounters(store)


async def _zero() -> int:
    return 0


@pytest.fixture
def pg(request: pytest.FixtureRequest) -> Callable[[], str]:
    return lambda: request.getfixturevalue("postgres_url")


@pytest.mark.parametrize("kind", BACKENDS)
async def test_holds_fit_under_the_cap_and_settle_replaces_them(
    kind: str, tmp_path: Path, pg: Callable[[], str]
) -> None:
    async with backend(kind, tmp_path, pg) as counters:
        for i in range(10):
            assert await counters.reserve(f"h{i}", [want()], later()) is None
        refused = await counters.reserve("h10", [want()], later())
        assert refused is not None and refused[0] == 0
        assert (refused[1].spent, refused[1].held) == (0, 100)
        # Settled for less than reserved: the difference is free again.
        assert await counters.settle("h0", [want().counter], 4) == [(0, 4)]
        (count,) = await counters.read([want()])
        assert (count.spent, count.held) == (4, 90)
        assert await counters.reserve("h11", [want(amount=6)], later()) is None
        await counters.release("h1", [want().counter])
        (count,) = await counters.read([want()])
        assert (count.spent, count.held) == (4, 86)


@pytest.mark.parametrize("kind", BACKENDS)
async def test_a_reservation_takes_every_counter_or_none(
    kind: str, tmp_path: Path, pg: Callable[[], str]
) -> None:
    async with backend(kind, tmp_path, pg) as counters:
        roomy, tight = want("usd:owner:o:day:x", cap=1000), want("usd:key:k1:month:x", cap=15)
        assert await counters.reserve("a", [roomy, tight], later()) is None
        refused = await counters.reserve("b", [roomy, tight], later())
        assert refused is not None and refused[0] == 1  # the tight one said no...
        counts = await counters.read([roomy, tight])
        assert [c.held for c in counts] == [10, 10]  # ...and the roomy one holds nothing of it
        # A counter with no cap (a soft budget) is counted but never refuses.
        soft = want("usd:owner:o:day:x", cap=None, amount=5000)
        assert await counters.reserve("c", [soft], later()) is None


@pytest.mark.parametrize("kind", BACKENDS)
async def test_a_hold_whose_process_died_stops_counting_when_it_expires(
    kind: str, tmp_path: Path, pg: Callable[[], str]
) -> None:
    async with backend(kind, tmp_path, pg) as counters:
        past = datetime.now(UTC) - timedelta(seconds=1)
        assert await counters.reserve("dead", [want(amount=100)], past) is None
        assert await counters.reserve("alive", [want(amount=100)], later()) is None


@pytest.mark.parametrize("kind", BACKENDS)
async def test_fifty_reservations_at_once_never_pass_the_cap(
    kind: str, tmp_path: Path, pg: Callable[[], str]
) -> None:
    async with backend(kind, tmp_path, pg) as counters:
        results = await asyncio.gather(
            *(counters.reserve(f"r{i}", [want(cap=100)], later()) for i in range(50))
        )
        assert sum(r is None for r in results) == 10
        (count,) = await counters.read([want()])
        assert count.held == 100


async def test_postgres_counters_are_shared_by_separate_connections(postgres_url: str) -> None:
    """Two processes of a scaled deployment each have their own connection: reservations
    made through both at once still stop at the cap."""
    url = normalize_database_url(postgres_url)
    async with app_store(url) as first:
        second = Writer(url)
        try:
            a, b = SqlCounters(first), SqlCounters(second)
            results = await asyncio.gather(
                *((a if i % 2 else b).reserve(f"r{i}", [want(cap=200)], later()) for i in range(50))
            )
            assert sum(r is None for r in results) == 20
            settled = await asyncio.gather(
                *(
                    (a if i % 2 else b).settle(f"r{i}", [want().counter], 10)
                    for i, r in enumerate(results)
                    if r is None
                )
            )
            assert len(settled) == 20
            (count,) = await a.read([want()])
            assert (count.spent, count.held) == (200, 0)
        finally:
            await second.close()


async def test_a_counter_starts_from_the_ledger(tmp_path: Path) -> None:
    """What the ledger already holds for the subject this period counts: a restarted
    process does not hand out the day's budget again."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    async with app_store(url) as store:
        now = datetime.now(UTC)

        def add(tx: Any) -> None:
            for cost, key, paid_by in ((0.5, "k1", "platform"), (0.25, "k1", "platform"),
                                       (9.0, "k1", "owner"), (7.0, "k2", "platform")):  # fmt: skip
                tx.execute(
                    "INSERT INTO model_calls (node, alias, model, effort, input_tokens,"
                    " cached_input_tokens, output_tokens, reasoning_tokens, cost_usd,"
                    " cost_source, duration_ms, api_key_id, paid_by, created_at) VALUES"
                    " ('gateway', 'gateway', 'openai:x', 'none', 1, 0, 1, 0, :c, 'table', 1,"
                    " :k, :p, :now)",
                    {"c": cost, "k": key, "p": paid_by, "now": tx.ts(now)},
                )

        await store.run(add)
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        spent = await store.read(lambda tx: spent_since(tx, "usd", "key", "k1", start))
        assert spent == int(0.75 * NANO)  # the owner's own credentials are not the platform's
        counters = SqlCounters(store)
        assert await counters.reserve("x", [want(cap=int(0.8 * NANO), amount=int(0.1 * NANO))],
                                      later()) is not None  # fmt: skip
