"""``crewchief usage`` (and the cost in ``run`` and ``ops show``), run as a user would: on
the local database, and on a server as the API key's owner."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.api.conftest import live_server_factory  # noqa: F401
from tests.cli.test_cli import crewchief
from tests.cli.test_cli_remote import cli, client_env
from tests.conftest import write_script

USAGE = {"input": 1000, "output": 200, "reasoning": 100, "cached_input": 400}


def test_usage_and_cost_locally(tmp_path: Path) -> None:
    spec = write_script(
        tmp_path, [{"node": "fast_path", "reply": {"text": "four", "usage": USAGE}}]
    )
    config = tmp_path / "crewchief.toml"
    config.write_text(
        f'[prices."{spec}"]\ninput = 1.0\noutput = 2.0\ncached_input = 0.5\nreasoning = 4.0\n'
    )
    env = {"CREWCHIEF_MODEL": spec, "CREWCHIEF_CONFIG": str(config)}
    home = tmp_path / "home"
    ran = crewchief(home, "run", "what is 2+2?", "--route", "fast", env=env)
    assert ran.returncode == 0, ran.stderr
    assert "cost $0.0016" in ran.stderr  # 600×1 + 400×0.5 + 200×2 + 100×4 per million
    op = json.loads(crewchief(home, "ops", "list", "--json", env=env).stdout)[0]["id"]
    shown = crewchief(home, "ops", "show", op, env=env).stdout
    assert "cost $0.0016" in shown and "· $0.0016" in shown  # in total and for the model

    table = crewchief(home, "usage", env=env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == [
        "model", "calls", "input", "cached", "output", "reasoning", "cost", "unpriced"
    ]  # fmt: skip
    assert lines[1].split() == [spec, "1", "1,000", "400", "300", "100", "$0.0016", "0"]
    assert lines[2].split() == ["total", "1", "1,000", "400", "300", "100", "$0.0016", "0"]
    assert "all time · prices as of 2025-08" in table.stdout

    by_day = json.loads(crewchief(home, "usage", "--by", "day,operation", "--json", env=env).stdout)
    (row,) = by_day["rows"]
    assert row["group"]["operation"] == op and row["cost_usd"] == 0.0016
    assert by_day["group_by"] == ["day", "operation"]
    none = crewchief(home, "usage", "--since", "2999-01-01", "--json", env=env)
    assert json.loads(none.stdout)["totals"]["calls"] == 0
    other = json.loads(crewchief(home, "usage", "--owner", "bob", "--json", env=env).stdout)
    assert other["rows"] == []  # the operation was the library's, not bob's
    bad = crewchief(home, "usage", "--by", "week", env=env)
    assert bad.returncode == 2 and "group_by: unknown grouping 'week'" in bad.stderr
    bad = crewchief(home, "usage", "--since", "last week", env=env)
    assert bad.returncode == 2 and "since: expected a date" in bad.stderr


def test_usage_on_a_server_is_the_api_keys_owners(live_server_factory) -> None:  # noqa: F811
    server = live_server_factory()
    r = httpx.post(
        f"{server.url}/v1/operations",
        json={"request": "what is 2+2?", "route": "fast"},
        headers=server.auth("alice"),
    )
    op = r.json()["id"]
    deadline = time.monotonic() + 30
    while (
        httpx.get(f"{server.url}/v1/operations/{op}", headers=server.auth()).json()["status"]
        != "completed"
    ):
        assert time.monotonic() < deadline
        time.sleep(0.1)
    env = client_env(server)
    out = cli(env, "usage", "--by", "operation", "--by", "model")
    assert out.returncode == 0, out.stderr
    assert op in out.stdout and "fake:default" in out.stdout
    assert "1 calls of unpriced models" in out.stdout
    bobs = json.loads(cli(client_env(server, "bob"), "usage", "--json").stdout)
    assert bobs["rows"] == [] and bobs["totals"]["calls"] == 0
    refused = cli(env, "usage", "--owner", "bob")
    assert refused.returncode == 2 and "forbidden" in refused.stderr
    bad = cli(env, "usage", "--until", "soon")
    assert bad.returncode == 2 and "query.until" in bad.stderr
