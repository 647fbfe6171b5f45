"""Migrations: ``upgrade head`` on an empty database equals the models, on each backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine

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


def test_upgrade_is_idempotent(tmp_path: Path) -> None:
    url = normalize_database_url(f"sqlite:///{tmp_path / 'app.db'}")
    upgrade(url)
    upgrade(url)
