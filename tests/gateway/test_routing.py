"""The routing table: rankings from benchmark figures, dated tables, diffs, and the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from crewchief.gateway import routing
from crewchief.gateway.targets import route
from tests.conftest import make_settings

BENCH = """
as_of = "2026-11"
[benchmarks.edit]
title = "editing"
task = "code_editing"
scale = "percent"
source = "https://example.org/edit"
[benchmarks.code]
task = "coding"
scale = "percent"
source = "https://example.org/code"
[benchmarks.think]
task = "reasoning"
scale = "percent"
source = "https://example.org/think"
[benchmarks.arena]
task = "chat"
scale = "elo"
elo_min = 1000
elo_max = 1500
source = "https://example.org/arena"
[models.big]
price_in = 10.0
price_out = 40.0
scores = { edit = 90, code = 90, think = 95, arena = 1450 }
[models.small]
price_in = 0.1
price_out = 0.4
scores = { edit = 80, code = 78, think = 60, arena = 1300 }
[models."qwen-local"]
price_in = 0.0
price_out = 0.0
scores = { edit = 40, code = 45, think = 30, arena = 1100 }
[models.unreachable]
scores = { edit = 99, code = 99, think = 99 }
"""


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CREWCHIEF_ALLOW_MODEL_REQUESTS", "1")  # routes only: nothing is sent
    return make_settings(
        tmp_path / "home",
        providers={"lan": {"type": "ollama"}},
        models={
            "orchestrator": {"model": "openai:big"},
            "delegate": {"model": "openai:small"},
            "fast": {"model": "fake:default"},
        },
        gateway={"models": ["lan:qwen-local", "openai:big-2026-01-01"]},
    )


@pytest.fixture
def bench_file(tmp_path: Path) -> Path:
    path = tmp_path / "bench.toml"
    path.write_text(BENCH)
    return path


def test_roles_rank_reachable_models_by_their_tasks_and_price(settings, bench_file) -> None:
    table = routing.compute(settings, routing.load_benchmarks(bench_file), "test")
    architect = table.roles["architect"]
    # Reasoning weighs 70 % for architects: the big model, despite its price.
    assert architect.primary == "openai:big"
    assert "openai:big-2026-01-01" in architect.scores  # dated names score as their model
    # Code editing is nearly as good on the small one, at a fortieth of the price.
    assert table.roles["implementation"].primary == "openai:small"
    assert "unreachable" not in json.dumps(table.to_json())  # not in the configuration
    assert architect.profiles["personal"] == "lan:qwen-local"  # on this machine
    assert architect.profiles["work"] == "openai:big"
    assert "fake:default" not in architect.scores  # no figures: not ranked
    assert len(architect.fallbacks) == 2


def test_the_gateway_follows_the_table_and_the_profile(settings, bench_file) -> None:
    table = routing.compute(settings, routing.load_benchmarks(bench_file), "test")
    chosen = route(settings, "crewchief/architect", "architect", table)
    assert [t.spec for t in chosen.targets][0] == "openai:big"
    assert "routing table" in chosen.reason
    # No table: the role's alias, as before.
    assert route(settings, "auto", "implementation").reason.endswith("delegate alias")


async def test_tables_are_kept_in_the_database_and_a_diff_says_what_changed(
    settings, bench_file
) -> None:
    from crewchief.db.migrate import ensure_current
    from crewchief.db.routes import RouteTables
    from crewchief.db.writer import Writer

    url = settings.resolved_database_url
    writer = Writer(url)
    await ensure_current(writer, url)
    store = RouteTables(writer)
    try:
        book = routing.RouteBook(store, every=0)
        assert await book.current() is None  # none yet: roles run on their aliases
        first = routing.compute(settings, routing.load_benchmarks(bench_file), "test")
        await routing.save(store, first)
        assert (await book.current()).roles["implementation"].primary == "openai:small"
        cheaper = BENCH.replace(
            "price_in = 10.0\nprice_out = 40.0", "price_in = 0.05\nprice_out = 0.1"
        )
        bench_file.write_text(cheaper)
        second = routing.compute(settings, routing.load_benchmarks(bench_file), "test")
        await routing.save(store, second)
        # The book sees the newer table without a restart.
        assert (await book.current()).roles["implementation"].primary == "openai:big"
        newer, older = await routing.newest(store, 2)
        lines = routing.diff(older, newer)
        assert any(
            line.startswith("implementation: primary openai:small -> openai:big") for line in lines
        ), lines
    finally:
        await writer.close()


def test_a_benchmark_file_without_its_tables_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('as_of = "2026"\n')
    with pytest.raises(ValueError, match="benchmarks"):
        routing.load_benchmarks(bad)


def test_the_shipped_snapshot_loads_and_names_its_sources() -> None:
    data = routing.load_benchmarks()
    assert data["as_of"] and data["benchmarks"] and data["models"]
    for name, bench in data["benchmarks"].items():
        assert bench["source"].startswith("http"), name
        assert bench["task"] in {t for pair in routing.ROLE_TASKS.values() for t in pair} | {
            "agentic_coding", "code_editing", "coding", "reasoning", "knowledge", "writing", "chat"
        }  # fmt: skip


def test_the_routes_command_refreshes_shows_and_diffs(settings, bench_file, tmp_path) -> None:
    home = tmp_path / "cli-home"
    config = tmp_path / "crewchief.toml"
    config.write_text(
        '[models.orchestrator]\nmodel = "openai:big"\n[models.delegate]\nmodel = "openai:small"\n'
    )

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "crewchief.cli", "--config", str(config), "--home", str(home),
             "routes", *args],
            capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
        )  # fmt: skip

    empty = cli("show")
    assert empty.returncode == 0 and "each role runs on its alias" in empty.stdout
    refreshed = cli("refresh", str(bench_file))
    assert refreshed.returncode == 0, refreshed.stderr
    assert "saved routing table 1" in refreshed.stdout and "architect" in refreshed.stdout
    shown = json.loads(cli("show", "--role", "architect", "--json").stdout)
    assert shown["roles"]["architect"]["primary"] == "openai:big"
    assert "nothing to compare" in cli("diff").stdout
    assert cli("refresh", str(bench_file)).returncode == 0
    assert "no change" in cli("diff").stdout


@pytest.mark.postgres
@pytest.mark.slow
async def test_workers_refresh_the_table_on_their_schedule(
    tmp_path: Path, bench_file: Path, postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    import asyncio

    from crewchief.db.routes import RouteTables
    from crewchief.db.writer import Writer
    from tests.executor.test_executors import Workers, scaled_settings

    settings = scaled_settings(tmp_path / "home", postgres_url, redis_url, redis_prefix)
    workers = Workers(settings, "fake:default", tmp_path)
    workers.env.update(
        CREWCHIEF_GATEWAY_ROUTES_REFRESH="* * * * * */2",  # every 2 s (a 6th, seconds column)
        CREWCHIEF_GATEWAY_BENCHMARKS=str(bench_file),
        CREWCHIEF_GATEWAY_MODELS="openai:big,openai:small",
    )
    store = Writer(postgres_url)
    try:
        workers.start()
        workers.start()
        tables = RouteTables(store)
        async with asyncio.timeout(30):
            while True:  # another process writes it: poll the database
                if await tables.newest_id() is not None:
                    break
                await asyncio.sleep(0.2)
        (table,) = await routing.newest(tables)
        assert table.roles["architect"].primary == "openai:big"
        assert "bench.toml" in table.source
    finally:
        workers.stop_all()
        await store.close()
