"""Shared fixtures. Real model requests are disabled for the whole run.

``CREWCHIEF_ALLOW_MODEL_REQUESTS=0`` makes building any non-``fake`` provider
fail loudly (it is inherited by subprocesses too). A test that needs a real
model server opts in by setting it back to ``1`` for itself.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["CREWCHIEF_ALLOW_MODEL_REQUESTS"] = "0"

from crewchief.client.facade import Crewchief  # noqa: E402
from crewchief.config import Settings, load_settings  # noqa: E402
from crewchief.models.fake import reset_scripts  # noqa: E402

PG_ADMIN_URL = os.environ.get("CREWCHIEF_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(autouse=True)
def _fresh_scripts() -> Iterator[None]:
    reset_scripts()
    yield
    reset_scripts()


def make_settings(home: Path, **overrides: Any) -> Settings:
    """Settings isolated from the developer's environment and config files."""
    env = {"CREWCHIEF_MODEL": "fake:default"}
    return load_settings(config_file=None, env=env, home=str(home), **overrides)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home")


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    name = f"crewchief_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """Settings for each storage backend: SQLite files, or PostgreSQL for both stores."""
    if request.param == "sqlite":
        return make_settings(tmp_path / "home")
    url = request.getfixturevalue("postgres_url")
    return make_settings(tmp_path / "home", database_url=url)


@pytest.fixture
async def chief(settings: Settings) -> AsyncIterator[Crewchief]:
    async with Crewchief(settings) as cc:
        yield cc


def write_script(directory: Path, rules: list[dict[str, Any]], **extra: Any) -> str:
    """Write a fake-provider script and return its ``fake:PATH`` spec."""
    path = directory / f"script-{uuid.uuid4().hex[:8]}.json"
    path.write_text(json.dumps({"rules": rules, **extra}), encoding="utf-8")
    return f"fake:{path}"


def plan_reply(*tasks: tuple[str, list[int]] | str, summary: str = "plan") -> dict[str, Any]:
    """A scripted planner reply: each task is a description or (description, depends_on)."""
    items = []
    for i, task in enumerate(tasks, start=1):
        description, deps = (task, []) if isinstance(task, str) else task
        items.append(
            {
                "id": i,
                "description": description,
                "active_form": f"Doing: {description}",
                "depends_on": deps,
            }
        )
    return {"plan": {"summary": summary, "tasks": items}}


async def run_planned(
    settings: Settings, model: Any, request: str, workspace: Path | None = None
) -> Any:
    """Run ``request`` down the plan route with ``model`` on both aliases; the stored operation."""
    async with Crewchief(settings, models={"orchestrator": model, "delegate": model}) as cc:
        result = await cc.run(request, workspace=workspace, route="plan")
        return await cc.get(result.id, events=True)


@pytest.fixture
def user_dir(tmp_path: Path) -> Path:
    """An empty folder of user skills."""
    root = tmp_path / "skills"
    root.mkdir()
    return root


@pytest.fixture
def redis_url() -> Iterator[str]:
    """The machine's Redis; each test gets its own key prefix (see ``redis_prefix``)."""
    redis = pytest.importorskip("redis")
    url = os.environ.get("CREWCHIEF_TEST_REDIS", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at {url} is not reachable: {exc}")
    finally:
        client.close()
    yield url


@pytest.fixture
def redis_prefix() -> str:
    """A Redis namespace no other test run shares."""
    return f"crewchief-test-{uuid.uuid4().hex[:12]}"


def metric_samples(text: str) -> dict[tuple[str, frozenset], float]:
    """``{(sample name, labels): value}`` of a Prometheus text exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def metric_total(samples: dict[tuple[str, frozenset], float], name: str, **labels: str) -> float:
    """The sum of the samples called ``name`` whose labels include ``labels``."""
    want = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and want <= ls)


def local_metrics() -> dict[tuple[str, frozenset], float]:
    """This process's metrics, as ``/metrics`` would show them."""
    from crewchief import metrics

    return metric_samples(metrics.exposition().decode())
