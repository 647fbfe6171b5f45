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
