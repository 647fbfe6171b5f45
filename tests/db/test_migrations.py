"""Migrations: ``upgrade head`` on an empty database equals the models, on each backend."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect

from crewchief.config import normalize_database_url
from crewchief.db.migrate import HEAD_REVISION, alembic_config, upgrade
from crewchief.db.models import Base


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return normalize_database_url(f"sqlite:///{tmp_path / 'fresh' / 'app.db'}")
    return normalize_database_url(request.getfixturevalue("postgres_url"))


def test_upgrade_head_matches_the_models(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            ctx = MigrationContext.configure(conn, opts={"compare_type": True})
            diff = compare_metadata(ctx, Base.metadata)
            version = ctx.get_current_revision()
    finally:
        engine.dispose()
    assert diff == [], f"models and migrations disagree: {diff}"
    assert version == HEAD_REVISION


def test_head_revision_constant_matches_the_scripts() -> None:
    script = ScriptDirectory.from_config(alembic_config("sqlite://"))
    assert script.get_current_head() == HEAD_REVISION


def _schema(url: str) -> dict[str, dict[str, Any]]:
    """Tables with their columns (type, nullability), keys, indexes and unique constraints."""
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            insp = inspect(conn)
            schema: dict[str, dict[str, Any]] = {}
            for table in sorted(insp.get_table_names()):
                schema[table] = {
                    "columns": [
                        (
                            col["name"],
                            col["type"].compile(dialect=engine.dialect),
                            col["nullable"],
                        )
                        for col in insp.get_columns(table)
                    ],
                    "primary_key": insp.get_pk_constraint(table)["constrained_columns"],
                    "indexes": sorted(
                        (ix["name"] or "", tuple(ix["column_names"]), bool(ix["unique"]))
                        for ix in insp.get_indexes(table)
                    ),
                    "unique_constraints": sorted(
                        (uc["name"] or "", tuple(uc["column_names"]))
                        for uc in insp.get_unique_constraints(table)
                    ),
                    "foreign_keys": sorted(
                        (
                            tuple(fk["constrained_columns"]),
                            fk["referred_table"],
                            tuple(fk["referred_columns"]),
                        )
                        for fk in insp.get_foreign_keys(table)
                    ),
                }
            return schema
    finally:
        engine.dispose()


def test_upgrade_is_idempotent(empty_db_url: str) -> None:
    upgrade(empty_db_url)
    first = _schema(empty_db_url)
    upgrade(empty_db_url)  # must not raise
    second = _schema(empty_db_url)
    engine = create_engine(empty_db_url)
    try:
        with engine.connect() as conn:
            versions = conn.exec_driver_sql("SELECT version_num FROM alembic_version").all()
    finally:
        engine.dispose()
    assert [tuple(row) for row in versions] == [(HEAD_REVISION,)]
    assert set(Base.metadata.tables) <= set(first), "the first upgrade created no tables"
    assert second == first, "a second upgrade changed the schema"


@pytest.mark.postgres
async def test_waiting_for_the_schema_lock_does_not_block_an_index_build(postgres_url: str) -> None:
    """Servers and workers starting together: one builds LangGraph's checkpoint indexes
    (CREATE INDEX CONCURRENTLY) under the schema lock while the others wait for it. Waiting
    must hold no snapshot, or the build and the waiters wait for each other forever."""
    import asyncio

    import psycopg

    from crewchief.config import plain_postgres_url
    from crewchief.db.migrate import schema_lock

    url = plain_postgres_url(postgres_url)
    entered = asyncio.Event()

    async def second_process() -> None:
        async with schema_lock(url):
            entered.set()

    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await conn.execute("CREATE TABLE lock_probe (id int)")
        async with schema_lock(url):
            waiter = asyncio.create_task(second_process())
            await asyncio.sleep(0.3)  # it is waiting for the lock now
            assert not entered.is_set()
            async with asyncio.timeout(10):
                await conn.execute("CREATE INDEX CONCURRENTLY lock_probe_id ON lock_probe (id)")
        async with asyncio.timeout(10):
            await waiter
    assert entered.is_set()


def test_the_cost_revision_keeps_the_ledger_and_says_whose_each_call_was(
    empty_db_url: str,
) -> None:
    """Upgrading from 0009: every row is kept, unpriced (its cost is not guessed after the
    fact); an operation's calls get its owner, and gateway calls their role."""
    from datetime import UTC, datetime

    from sqlalchemy import MetaData

    upgrade(empty_db_url, "0009")
    engine = create_engine(empty_db_url)
    now = datetime(2026, 3, 1, 12, tzinfo=UTC)
    try:
        with engine.begin() as conn:
            tables = MetaData()
            tables.reflect(conn)
            zero = dict.fromkeys(
                (
                    "planning_input_tokens", "planning_output_tokens", "planning_reasoning_tokens",
                    "input_tokens", "output_tokens", "reasoning_tokens",
                ),
                0,
            )  # fmt: skip
            conn.execute(
                tables.tables["operations"].insert(),
                {"id": "op-1", "request": "r", "status": "completed", "route_forced": False,
                 "owner": "alice", "created_at": now, "updated_at": now, **zero},
            )  # fmt: skip
            calls = [
                ("op-1", "plan", None, None),
                (None, "gateway", "gateway:rewrite:architect", "bob"),
                (None, "gateway", "gateway:code", "bob"),
                (None, "gateway", "gateway:embeddings", None),
            ]
            conn.execute(
                tables.tables["model_calls"].insert(),
                [
                    {"operation_id": op, "node": node, "alias": "a", "purpose": purpose,
                     "model": "openai:gpt-5", "effort": "low", "input_tokens": 100 + i,
                     "output_tokens": 50, "reasoning_tokens": 10, "duration_ms": 1.0,
                     "owner": owner, "created_at": now}
                    for i, (op, node, purpose, owner) in enumerate(calls)
                ],
            )  # fmt: skip
        upgrade(empty_db_url)
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT input_tokens, owner, role, cost_usd, cost_source, cached_input_tokens"
                " FROM model_calls ORDER BY id"
            ).all()
            key = conn.exec_driver_sql("SELECT api_key_id FROM operations").scalar_one()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [
        (100, "alice", None, 0.0, "unpriced", 0),
        (101, "bob", "architect", 0.0, "unpriced", 0),
        (102, "bob", "code", 0.0, "unpriced", 0),
        (103, None, "embeddings", 0.0, "unpriced", 0),
    ]
    assert key is None


def test_the_request_log_revision_fills_in_questions_and_downgrades(empty_db_url: str) -> None:
    """Upgrading from 0013: kept answers get the start of their last user message and no
    figures (they were not measured); downgrading drops the columns and keeps the rows."""
    from datetime import UTC, datetime

    from alembic import command
    from sqlalchemy import MetaData

    upgrade(empty_db_url, "0013")
    engine = create_engine(empty_db_url)
    messages = [
        [{"role": "user", "content": "first"}, {"role": "assistant", "content": "a"},
         {"role": "user", "content": [{"type": "text", "text": "Why  does\nit " + "x" * 300}]}],
        [{"role": "system", "content": "only a system prompt"}],
    ]  # fmt: skip
    try:
        with engine.begin() as conn:
            tables = MetaData()
            tables.reflect(conn)
            conn.execute(
                tables.tables["gateway_responses"].insert(),
                [
                    {"id": f"resp_{i}", "role": "architect", "cache": "miss",
                     "prompt_digest": "d", "messages": m, "created_at": datetime.now(UTC)}
                    for i, m in enumerate(messages)
                ],
            )  # fmt: skip
        upgrade(empty_db_url)
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(
                "SELECT id, question, latency_ms, fallbacks, cost_usd, stream"
                " FROM gateway_responses ORDER BY id"
            ).all()
        assert [tuple(r) for r in rows] == [
            ("resp_0", ("Why does it " + "x" * 300)[:200], None, None, None, None),
            ("resp_1", None, None, None, None, None),
        ]
        command.downgrade(alembic_config(empty_db_url), "0013")
        columns = {c["name"] for c in inspect(engine).get_columns("gateway_responses")}
        assert "question" not in columns and "latency_ms" not in columns
        with engine.connect() as conn:
            kept = conn.exec_driver_sql("SELECT COUNT(*) FROM gateway_responses").scalar_one()
        assert kept == 2
        upgrade(empty_db_url)  # and up again
    finally:
        engine.dispose()
