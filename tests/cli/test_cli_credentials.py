"""``crewchief credentials``, run as an operator and an owner would: a key made with
``keygen``, a credential stored from standard input (never the command line), listed,
rotated to a new key and deleted locally; the same through a server as the API key's
owner; clear errors without a key or with bad input, and the key never printed."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

from pydantic import SecretStr

from crewchief.db.migrate import app_store
from crewchief.runtime.credentials import CredentialBook
from tests.api.conftest import live_server_factory  # noqa: F401
from tests.cli.test_cli_remote import client_env
from tests.conftest import make_settings

SECRET = "sk-cli-0123456789abcdefghijKLMNOPQRSTuvwxyz"


def run(
    home: Path, *args: str, stdin: str = "", env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CREWCHIEF_")}
    full.update(CREWCHIEF_HOME=str(home), CREWCHIEF_ALLOW_MODEL_REQUESTS="0", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "crewchief.cli", "credentials", *args],
        input=stdin, capture_output=True, text=True, env=full, timeout=120,
    )  # fmt: skip


def keygen(home: Path, **env: str) -> str:
    out = run(home, "keygen", env=env)
    assert out.returncode == 0, out.stderr
    assert "CREWCHIEF_SECRET_KEYS" in out.stderr
    return out.stdout.strip()


def decrypted(home: Path, keys: list[str], owner: str) -> str:
    """The owner's openai key as a process with ``keys`` reads it."""
    settings = make_settings(home, secret_keys=[SecretStr(k) for k in keys])

    async def read() -> str:
        async with app_store(settings.resolved_database_url) as store:
            creds = await CredentialBook(settings, store).for_owner(owner)
            return creds.get("openai").api_key.get_secret_value()

    return asyncio.run(read())


def test_set_list_rotate_and_delete_locally(tmp_path: Path) -> None:
    home = tmp_path / "home"
    # keygen works even while the configured keys do not load.
    old = keygen(home, CREWCHIEF_SECRET_KEYS="not-a-key")
    assert len(old) == 44 and keygen(home) != old
    env = {"CREWCHIEF_SECRET_KEYS": old}
    stored = run(home, "set", "openai", "--owner", "alice", stdin=SECRET + "\n", env=env)
    assert stored.returncode == 0, stored.stderr
    assert stored.stdout.strip() == "stored the openai credential …wxyz of alice"
    listed = json.loads(run(home, "list", "--owner", "alice", "--json", env=env).stdout)
    assert [(i["provider"], i["fingerprint"]) for i in listed["items"]] == [("openai", "…wxyz")]
    assert "(no API key) has no credentials" in run(home, "list", env=env).stdout
    database = (home / "crewchief.db").read_bytes() + b"".join(
        p.read_bytes() for p in home.glob("crewchief.db-*")
    )
    assert SECRET.encode() not in database
    # Rotation: the new key first, rotate, then the old one can go.
    new = keygen(home)
    rotated = run(home, "rotate", env={"CREWCHIEF_SECRET_KEYS": f"{new},{old}"})
    assert rotated.returncode == 0, rotated.stderr
    assert "encrypted 1 credential(s) again" in rotated.stdout
    assert decrypted(home, [new], "alice") == SECRET
    deleted = run(home, "delete", "openai", "--owner", "alice", env={"CREWCHIEF_SECRET_KEYS": new})
    assert deleted.stdout.strip() == "deleted the openai credential of alice"
    for out in (stored, listed, rotated, deleted):
        assert SECRET not in str(out)


def test_errors_say_what_to_do_and_never_show_the_key(tmp_path: Path) -> None:
    home = tmp_path / "home"
    keyless = run(home, "set", "openai", "--owner", "alice", stdin=SECRET)
    assert keyless.returncode == 1 and "crewchief credentials keygen" in keyless.stderr
    env = {"CREWCHIEF_SECRET_KEYS": keygen(home)}
    empty = run(home, "set", "openai", "--owner", "alice", env=env)
    assert empty.returncode == 2 and "no API key" in empty.stderr
    unknown = run(home, "set", "ollama", stdin=SECRET, env=env)
    assert unknown.returncode == 2 and "provider: unknown provider 'ollama'" in unknown.stderr
    spaced = run(home, "set", "openai", stdin=f"{SECRET} more", env=env)
    assert spaced.returncode == 2 and "api_key" in spaced.stderr
    bad_key = run(home, "list", env={"CREWCHIEF_SECRET_KEYS": "hunter2"})
    assert (
        bad_key.returncode == 2 and "secret_keys (CREWCHIEF_SECRET_KEYS): key 1" in bad_key.stderr
    )
    for out in (keyless, unknown, spaced, bad_key):
        assert SECRET not in out.stdout + out.stderr and "hunter2" not in out.stderr


def test_on_a_server_credentials_are_the_api_keys_owners(
    live_server_factory,  # noqa: F811
    tmp_path: Path,
) -> None:
    server = live_server_factory(env={"CREWCHIEF_SECRET_KEYS": keygen(tmp_path)})
    env = client_env(server)

    def remote(*args: str, stdin: str = "", who: str = "alice") -> subprocess.CompletedProcess:
        full = client_env(server, who)
        return subprocess.run(
            [sys.executable, "-m", "crewchief.cli", "credentials", *args],
            input=stdin, capture_output=True, text=True, env=full, timeout=120,
        )  # fmt: skip

    stored = remote("set", "openai", stdin=SECRET)
    assert stored.returncode == 0, stored.stderr
    assert "stored the openai credential …wxyz of your key's owner" in stored.stdout
    listed = json.loads(remote("list", "--json").stdout)
    assert listed["owner"] == "alice" and listed["items"][0]["fingerprint"] == "…wxyz"
    assert json.loads(remote("list", "--json", who="bob").stdout)["items"] == []
    refused = remote("list", "--owner", "bob")
    assert refused.returncode == 2 and "--owner" in refused.stderr
    bad = remote("set", "openai", "--base-url", "ftp://x.example", stdin=SECRET)
    assert bad.returncode == 2 and "body.base_url" in bad.stderr
    gone = json.loads(remote("delete", "openai", "--json").stdout)
    assert gone == {"owner": "alice", "provider": "openai", "deleted": 1}
    assert env["CREWCHIEF_API_KEY"] not in stored.stdout
    for out in (stored, refused, bad):
        assert SECRET not in out.stdout + out.stderr
