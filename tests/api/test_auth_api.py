"""Who may call the API: bearer keys, revocation, owners, rate limits, keyless dev mode."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time

import httpx
import pytest

from tests.api.conftest import _server_env, free_port


def _assert_unauthorized(r: httpx.Response) -> None:
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Bearer")
    body = r.json()
    assert body["error"]["code"] == "unauthorized"
    assert body["error"]["message"]


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Basic YWxpY2U6c2VjcmV0"},
        {"Authorization": "Bearer"},
        {"Authorization": "Bearer "},
        {"Authorization": "cc_not_even_a_scheme"},
        {"Authorization": "Bearer cc_unknownkeyunknownkeyunknownkeyunknownkey12"},
        {"Authorization": "Bearer not-a-crewchief-key"},
    ],
    ids=["none", "basic", "bearer-empty", "bearer-space", "no-scheme", "unknown", "foreign"],
)
async def test_missing_malformed_or_unknown_key_is_401(api, headers) -> None:
    for method, path in [
        ("GET", "/v1/operations"),
        ("POST", "/v1/operations"),
        ("GET", "/v1/operations/some-id"),
        ("GET", "/v1/operations/some-id/events"),
    ]:
        kwargs = {"json": {"request": "hi"}} if method == "POST" else {}
        _assert_unauthorized(await api.client.request(method, path, headers=headers, **kwargs))
    # Nothing was started on anyone's behalf.
    r = await api.client.get("/v1/operations", headers=api.auth())
    assert r.json()["items"] == []


async def test_bearer_scheme_is_case_insensitive(api) -> None:
    for prefix in ("bearer ", "BEARER ", "Bearer  "):
        headers = {"Authorization": prefix + api.keys["alice"]}
        assert (await api.client.get("/v1/operations", headers=headers)).status_code == 200


async def test_probes_need_no_key(api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok"}
    assert (await api.client.get("/readyz")).json() == {"status": "ready", "database": "ok"}


def test_revoked_key_stops_working_within_two_seconds(live_server) -> None:
    created = live_server.cli("keys", "create", "--name", "temp", "--owner", "carol", "--json")
    info = json.loads(created.stdout)
    headers = {"Authorization": f"Bearer {info['key']}"}
    url = f"{live_server.url}/v1/operations"
    assert httpx.get(url, headers=headers, timeout=5).status_code == 200

    out = live_server.cli("keys", "revoke", info["id"])
    assert info["id"] in out.stdout
    revoked_at = time.monotonic()
    while True:
        r = httpx.get(url, headers=headers, timeout=5)
        if r.status_code == 401:
            break
        assert r.status_code == 200
        assert time.monotonic() - revoked_at < 5, "revoked key still accepted after 5 s"
        time.sleep(0.1)
    _assert_unauthorized(r)
    # Other keys keep working.
    assert httpx.get(url, headers=live_server.auth("alice"), timeout=5).status_code == 200


def test_keys_create_shows_the_key_once(live_server) -> None:
    created = live_server.cli("keys", "create", "--name", "ci-bot", "--owner", "carol")
    secret = created.stdout.strip()
    assert secret.startswith("cc_") and len(secret) > 40
    assert "not shown again" in created.stderr
    listed = live_server.cli("keys", "list")
    listed_json = live_server.cli("keys", "list", "--json")
    for out in (listed, listed_json):
        assert secret not in out.stdout + out.stderr
    assert "ci-bot" in listed.stdout and "carol" in listed.stdout
    rows = json.loads(listed_json.stdout)
    assert {r["name"] for r in rows} >= {"ci-bot", "alice-key", "bob-key"}
    assert all("key" not in r and "key_hash" not in r for r in rows)
    # The printed key works.
    r = httpx.get(
        f"{live_server.url}/v1/operations",
        headers={"Authorization": f"Bearer {secret}"},
        timeout=5,
    )
    assert r.status_code == 200


def test_keys_revoke_unknown_id_exits_2(live_server) -> None:
    out = live_server.cli("keys", "revoke", "key_doesnotexist", check=False)
    assert out.returncode == 2
    assert "key_doesnotexist" in out.stderr and "keys list" in out.stderr
    assert "Traceback" not in out.stderr


async def _alice_awaiting_approval(api) -> str:
    """An operation of alice's that waits for plan approval (so it stays put)."""
    body = {"request": "Refactor the parser", "route": "plan", "approve_plan": True}
    r = await api.client.post("/v1/operations", json=body, headers=api.auth("alice"))
    assert r.status_code == 202
    op = r.json()["id"]
    for _ in range(250):  # hang guard: ~5 s
        r = await api.client.get(f"/v1/operations/{op}", headers=api.auth("alice"))
        if r.json()["status"] == "awaiting_approval":
            return op
        await asyncio.sleep(0.02)
    raise AssertionError(f"operation never awaited approval: {r.json()['status']}")


async def test_another_owner_gets_404_not_403(api) -> None:
    op = await _alice_awaiting_approval(api)
    bob = api.auth("bob")
    base = f"/v1/operations/{op}"
    calls = [
        ("GET", base, None),
        ("GET", f"{base}?events=true", None),
        ("POST", f"{base}/cancel", None),
        ("POST", f"{base}/plan", {"action": "reject", "reason": "not yours"}),
        ("POST", f"{base}/tasks/1/rerun", {}),
        ("GET", f"{base}/events", None),
    ]
    for method, path, body in calls:
        r = await api.client.request(method, path, json=body, headers=bob)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"]["code"] == "operation_not_found"
        assert op in r.json()["error"]["message"]
    # Bob's attempts changed nothing: alice's plan still waits for her.
    r = await api.client.get(base, headers=api.auth("alice"))
    assert r.json()["status"] == "awaiting_approval"
    r = await api.client.post(f"{base}/cancel", headers=api.auth("alice"))
    assert r.status_code == 200 and r.json()["status"] == "cancelled"


async def test_another_owner_cannot_follow_a_running_operation(api_factory) -> None:
    async with api_factory(models="fake:default?delay=5") as api:
        r = await api.client.post(
            "/v1/operations", json={"request": "What is a monad?"}, headers=api.auth("alice")
        )
        op = r.json()["id"]
        r = await api.client.get(f"/v1/operations/{op}", headers=api.auth("alice"))
        assert r.json()["status"] == "running"  # the model call takes 5 s
        r = await api.client.get(f"/v1/operations/{op}/events", headers=api.auth("bob"))
        assert r.status_code == 404 and r.json()["error"]["code"] == "operation_not_found"
        r = await api.client.post(f"/v1/operations/{op}/cancel", headers=api.auth("alice"))
        assert r.json()["status"] == "cancelled"


async def test_list_shows_only_the_callers_operations(api) -> None:
    ids = {}
    for owner in ("alice", "bob", "alice"):
        r = await api.client.post(
            "/v1/operations", json={"request": f"hello from {owner}"}, headers=api.auth(owner)
        )
        ids.setdefault(owner, set()).add(r.json()["id"])
    for owner in ("alice", "bob"):
        r = await api.client.get("/v1/operations", headers=api.auth(owner))
        assert {i["id"] for i in r.json()["items"]} == ids[owner]


async def test_rate_limit_is_per_key_with_retry_after(api_factory) -> None:
    async with api_factory(api={"rate_limit_per_minute": 3}) as api:
        for _ in range(3):
            r = await api.client.get("/v1/operations", headers=api.auth("alice"))
            assert r.status_code == 200
        r = await api.client.get("/v1/operations", headers=api.auth("alice"))
        assert r.status_code == 429
        assert r.json()["error"]["code"] == "rate_limited"
        assert int(r.headers["retry-after"]) >= 1
        # A POST is refused too, and nothing is started.
        r = await api.client.post("/v1/operations", json={"request": "x"}, headers=api.auth())
        assert r.status_code == 429
        # Bob has his own bucket; probes are not limited.
        for _ in range(3):
            r = await api.client.get("/v1/operations", headers=api.auth("bob"))
            assert r.status_code == 200 and r.json()["items"] == []
        assert (await api.client.get("/healthz")).status_code == 200


def test_rate_limit_on_a_real_server(live_server_factory) -> None:
    server = live_server_factory(env={"CREWCHIEF_API_RATE_LIMIT": "3"})
    url = f"{server.url}/v1/operations"
    codes = [httpx.get(url, headers=server.auth(), timeout=5).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = httpx.get(url, headers=server.auth(), timeout=5)
    assert r.headers["retry-after"].isdigit() and int(r.headers["retry-after"]) >= 1
    assert httpx.get(url, headers=server.auth("bob"), timeout=5).status_code == 200


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_no_auth_refused_on_a_public_host(tmp_path) -> None:
    (tmp_path / "none.toml").write_text("")
    port = free_port()
    out = subprocess.run(
        [sys.executable, "-m", "crewchief.cli", "serve", "--no-auth", "--host", "0.0.0.0"]
        + ["--port", str(port)],
        env=_server_env(tmp_path, {}),
        capture_output=True,
        text=True,
        timeout=30,  # a server that started would hang here
        stdin=subprocess.DEVNULL,
    )
    assert out.returncode == 2
    assert "--no-auth" in out.stderr and "loopback" in out.stderr
    assert "crewchief API on" not in out.stderr
    assert not _listening(port)


def test_no_auth_on_loopback_warns_and_serves_without_a_key(live_server_factory) -> None:
    server = live_server_factory(args=["--no-auth"])
    log = (server.home / "server.log").read_text()
    assert "WARNING" in log and "authentication is OFF" in log
    r = httpx.post(f"{server.url}/v1/operations", json={"request": "hi"}, timeout=5)
    assert r.status_code == 202
    r = httpx.get(f"{server.url}/v1/operations/{r.json()['id']}", timeout=5)
    assert r.status_code == 200


async def test_keys_of_one_owner_share_its_operations(api) -> None:
    from crewchief.db.keys import create_key

    store = api.app.state.chief.services.store
    _, second = await create_key(store, name="alice-laptop", owner="alice")
    laptop = {"Authorization": f"Bearer {second}"}
    r = await api.client.post(
        "/v1/operations", json={"request": "What is a monad?"}, headers=api.auth("alice")
    )
    op = r.json()["id"]
    assert (await api.client.get(f"/v1/operations/{op}", headers=laptop)).status_code == 200
    listed = (await api.client.get("/v1/operations", headers=laptop)).json()["items"]
    assert [i["id"] for i in listed] == [op]
    assert (
        await api.client.get(f"/v1/operations/{op}", headers=api.auth("bob"))
    ).status_code == 404
