"""Run the Alembic migrations that ship inside the package."""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from crewchief.config import sync_url
from crewchief.db.session import Database, ensure_sqlite_dir

# The newest revision in crewchief/migrations/versions; a test keeps it in step,
# so start-up can skip loading Alembic when the database is already current.
HEAD_REVISION = "0001"


def alembic_config(url: str):  # noqa: ANN201 - alembic.config.Config, imported lazily
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", "crewchief:migrations")
    cfg.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Upgrade the database at ``url`` (sync call; creates a SQLite file's folder)."""
    from alembic import command

    ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)


async def current_revision(db: Database) -> str | None:
    try:
        async with db.engine.connect() as conn:
            row = (await conn.execute(text("SELECT version_num FROM alembic_version"))).first()
    except DBAPIError:
        return None
    return row[0] if row else None


async def ensure_current(db: Database, url: str) -> None:
    """Upgrade to head unless the database is already there."""
    if await current_revision(db) == HEAD_REVISION:
        return
    await asyncio.to_thread(upgrade, url)
