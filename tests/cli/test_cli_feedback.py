"""``crewchief feedback add|list|summary|export``, run as a user would: on the local
database, and on a server as the API key's owner."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx

from tests.api.conftest import live_server_factory  # noqa: F401
from tests.cli.test_cli import crewchief
from tests.cli.test_cli_remote import cli, client_env
from tests.conftest import write_script


def test_rate_summarize_and_export_locally(tmp_path: Path) -> None:
    spec = write_script(tmp_path, [{"node": "fast_path", "reply": "Ask ann@example.com"}])
    home, env = tmp_path / "home", {"CREWCHIEF_MODEL": spec}
    assert crewchief(home, "run", "who owns billing?", "--route", "fast", env=env).returncode == 0
    op = json.loads(crewchief(home, "ops", "list", "--json", env=env).stdout)[0]["id"]
    fix = tmp_path / "fix.txt"
    fix.write_text("Ask the billing team at billing@example.com\n")

    added = crewchief(
        home, "feedback", "add", "--operation", op, "--down", "--correction-file", str(fix), env=env
    )
    assert added.returncode == 0, added.stderr
    assert added.stdout.strip() == f"rated operation {op}: thumbs down, with a correction"

    out = tmp_path / "pairs.jsonl"
    export = crewchief(home, "feedback", "export", "--format", "dpo", "-o", str(out), env=env)
    assert export.returncode == 0, export.stderr
    assert export.stderr.strip() == f"wrote 1 pairs to {out} (1 correction)"
    [pair] = [json.loads(line) for line in out.read_text().splitlines()]
    assert pair["prompt"] == [{"role": "user", "content": "who owns billing?"}]
    assert (pair["chosen"], pair["rejected"]) == (
        "Ask the billing team at [email]\n", "Ask [email]",
    )  # fmt: skip
    plain = crewchief(home, "feedback", "export", "--no-redact", env=env)
    assert "billing@example.com" in json.loads(plain.stdout)["chosen"]
    (tmp_path / "scrubber.py").write_text("def shout(text):\n    return text.upper()\n")
    mine = crewchief(
        home, "feedback", "export", "--redact", "scrubber:shout",
        env={**env, "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert json.loads(mine.stdout)["rejected"] == "ASK ANN@EXAMPLE.COM"

    again = crewchief(home, "feedback", "add", "--operation", op, "--stars", "4", env=env)
    assert again.stdout.strip() == f"rated operation {op}: 4 stars (replaced the earlier rating)"
    table = crewchief(home, "feedback", "summary", "--by", "route", env=env)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["route", "ratings", "mean", "positive", "corrections"]
    assert lines[1].split() == ["fast", "1", "0.75", "100%", "0"]
    assert lines[2].split() == ["total", "1", "0.75", "100%", "0"]
    assert "fast path: mean 0.75 of 1" in table.stdout
    listed = json.loads(crewchief(home, "feedback", "list", "--json", env=env).stdout)
    assert [(r["operation_id"], r["stars"]) for r in listed] == [(op, 4)]

    bad = crewchief(home, "feedback", "add", "--operation", op, "--up", "--stars", "2", env=env)
    assert bad.returncode == 2 and "not allowed with argument" in bad.stderr
    missing = crewchief(home, "feedback", "add", "--operation", "nope", "--up", env=env)
    assert missing.returncode == 1 and "operation nope not found" in missing.stderr
    task = crewchief(
        home, "feedback", "add", "--operation", op, "--task", "1", "--version", "2", "--up", env=env
    )
    assert task.returncode == 1 and f"operation {op} has no task 1 version 2" in task.stderr
    week = crewchief(home, "feedback", "summary", "--by", "week", env=env)
    assert week.returncode == 2 and "invalid choice: 'week'" in week.stderr


def test_feedback_on_a_server_is_the_api_keys_owners(live_server_factory) -> None:  # noqa: F811
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
    added = cli(env, "feedback", "add", "--operation", op, "--up", "--correction", "4", "--json")
    assert added.returncode == 0, added.stderr
    assert json.loads(added.stdout)["owner"] == "alice"
    summary = json.loads(cli(env, "feedback", "summary", "--by", "kind", "--json").stdout)
    assert summary["rows"] == [
        {"group": "operation", "count": 1, "mean_score": 1.0, "positive_share": 1.0,
         "corrections": 1}
    ]  # fmt: skip
    export = cli(env, "feedback", "export")
    assert export.returncode == 0, export.stderr
    assert json.loads(export.stdout)["chosen"] == "4"
    bob = client_env(server, "bob")
    refused = cli(bob, "feedback", "add", "--operation", op, "--down")
    assert refused.returncode == 1 and "operation_not_found" in refused.stderr
    assert cli(bob, "feedback", "export").stdout == ""
