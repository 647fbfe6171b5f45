"""``crewchief profile show|set|clear``, run as a user would: on the local database by owner,
and on a server as the API key's owner."""

from __future__ import annotations

import json
from pathlib import Path

import httpx

from tests.api.conftest import live_server_factory  # noqa: F401
from tests.cli.test_cli import crewchief
from tests.cli.test_cli_remote import cli, client_env


def test_profile_set_show_and_clear_locally(tmp_path: Path) -> None:
    out = crewchief(
        tmp_path, "profile", "set", "--owner", "alice", "-l", "Python", "-l", "Go",
        "--verbosity", "terse", "--notes", "Prefers small diffs",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "stated: languages: Python, Go; verbosity: terse" in out.stdout
    assert "About this user" in out.stdout
    # set changes only what it is given; --unset clears a field.
    out = crewchief(tmp_path, "profile", "set", "--owner", "alice", "--unset", "notes", "--json")
    stated = json.loads(out.stdout)["stated"]
    assert stated["languages"] == ["Python", "Go"] and stated["notes"] is None
    # Bad input: a clear error naming the field, exit 2, nothing stored.
    bad = crewchief(tmp_path, "profile", "set", "--owner", "alice", "--verbosity", "chatty")
    assert bad.returncode == 2
    assert "verbosity" in bad.stderr and "'terse', 'normal' or 'detailed'" in bad.stderr
    shown = json.loads(crewchief(tmp_path, "profile", "show", "--owner", "alice", "--json").stdout)
    assert shown["stated"]["verbosity"] == "terse" and shown["owner"] == "alice"
    other = json.loads(crewchief(tmp_path, "profile", "show", "--owner", "bob", "--json").stdout)
    assert other["stated"]["languages"] == []
    # memory forget deletes the profile with the rest, and says so.
    forgot = crewchief(tmp_path, "memory", "forget", "--owner", "alice", "--json")
    assert json.loads(forgot.stdout)["deleted"]["profile"] == 1
    cleared = crewchief(tmp_path, "profile", "clear", "--owner", "alice")
    assert cleared.returncode == 0 and "alice had no profile" in cleared.stdout


def test_profile_on_a_server_is_the_api_keys_owners(live_server_factory) -> None:  # noqa: F811
    server = live_server_factory()
    env = client_env(server)
    out = cli(env, "profile", "set", "-f", "FastAPI", "--skill-level", "expert")
    assert out.returncode == 0, out.stderr
    r = httpx.get(f"{server.url}/v1/profile", headers=server.auth("alice"))
    assert r.json()["stated"]["frameworks"] == ["FastAPI"]
    bobs = json.loads(cli(client_env(server, "bob"), "profile", "show", "--json").stdout)
    assert bobs["owner"] == "bob" and bobs["stated"]["frameworks"] == []
    bad = cli(env, "profile", "set", "--skill-level", "wizard")
    assert bad.returncode == 2 and "body.skill_level" in bad.stderr
    refused = cli(env, "profile", "show", "--owner", "bob")
    assert refused.returncode == 2 and "--owner" in refused.stderr
    cleared = json.loads(cli(env, "profile", "clear", "--json").stdout)
    assert cleared == {"owner": "alice", "deleted": 1}
