"""Run the Alembic migrations that ship inside the package."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from crewchief.config import normalize_database_url
from crewchief.db.writer import Writer

# The newest revision in crewchief/migrations/versions; a test keeps it in step,
# so start-up can skip loading Alembic when the database is already current.
HEAD_REVISION = "0014"
_SCHEMA_LOCK = 0x73636865


def ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)


def alembic_config(url: str):  # noqa: ANN201 - alembic.config.Config, imported lazily
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "crewchief:migrations")
    cfg.set_main_option("sqlalchemy.url", normalize_database_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` (sync call; creates a SQLite file's folder)."""
    from alembic import command

    ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)


def _current(tx: Any) -> str | None:
    try:
        row = tx.one("SELECT version_num FROM alembic_version")
    except Exception:  # noqa: BLE001 - no table yet: an empty database
        return None
    return row[0] if row else None


@contextlib.asynccontextmanager
async def schema_lock(url: str) -> AsyncIterator[None]:
    """On PostgreSQL, one process at a time changes the schema (servers and workers starting
    together on a fresh database); on SQLite, nothing (its writes are serialized anyway)."""
    if make_url(normalize_database_url(url)).get_backend_name() != "postgresql":
        yield
        return
    import psycopg

    from crewchief.config import plain_postgres_url

    async with await psycopg.AsyncConnection.connect(
        plain_postgres_url(url), autocommit=True
    ) as conn:
        await advisory_lock(conn, _SCHEMA_LOCK)
        try:
            yield
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_SCHEMA_LOCK,))


async def advisory_lock(conn: Any, key: int, poll: float = 0.05) -> None:
    """Take a session advisory lock on an autocommit connection, polling for it.

    Never ``pg_advisory_lock``: a session blocked in that statement holds a snapshot,
    and ``CREATE INDEX CONCURRENTLY`` (LangGraph's checkpoint setup runs it under the
    lock) waits for every such snapshot to go away: the two processes would wait for
    each other forever, unseen by PostgreSQL's deadlock detector.
    """
    while True:
        got = await (await conn.execute("SELECT pg_try_advisory_lock(%s)", (key,))).fetchone()
        if got[0]:
            return
        await asyncio.sleep(poll)


async def ensure_current(store: Writer, url: str) -> None:
    """Upgrade to head unless the database is already there (checked without loading Alembic)."""
    if await store.read(_current) == HEAD_REVISION:
        return
    async with schema_lock(url):
        if await store.read(_current) != HEAD_REVISION:  # another process may have done it
            await asyncio.to_thread(upgrade, url)


@contextlib.asynccontextmanager
async def app_store(url: str) -> AsyncIterator[Writer]:
    """The app database at ``url``, upgraded first, closed on the way out (for commands and
    jobs that open it for one piece of work)."""
    store = Writer(url)
    try:
        await ensure_current(store, url)
        yield store
    finally:
        await store.close()
