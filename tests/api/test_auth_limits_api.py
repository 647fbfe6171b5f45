"""Failed authentication is limited per client address and answered without the database where
it can be; keyless dev mode answers only requests addressed to a loopback host name."""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import httpx

from crewchief.api.auth import KEY_CACHE_SECONDS, KeyCache
from crewchief.config import ApiSettings
from crewchief.db.keys import create_key, revoke_key


def _from(api: Any, address: str) -> httpx.AsyncClient:
    """A client of the same app whose requests come from ``address``."""
    transport = httpx.ASGITransport(app=api.app, client=(address, 40_000))
    return httpx.AsyncClient(transport=transport, base_url="http://api")


def _well_formed_unknown_key() -> dict[str, str]:
    return {"Authorization": "Bearer cc_" + secrets.token_urlsafe(32)}


# The default limit of failed authentications per client address and minute.
AUTH_FAILURES_PER_MINUTE = ApiSettings().auth_failures_per_minute


class CountingLookup:
    """The facade's key lookup, counting the calls that reach the database."""

    def __init__(self, verify: Any):
        self._verify = verify
        self.reads = 0

    async def __call__(self, secret: str) -> Any:
        self.reads += 1
        return await self._verify(secret)


def _count_key_lookups(api: Any) -> CountingLookup:
    """Serve the app's keys from a fresh KeyCache over a counting view of the facade's lookup."""
    lookup = CountingLookup(api.app.state.chief.verify_key)
    api.app.state.keys = KeyCache(lookup)
    return lookup


async def test_failed_authentication_is_limited_per_address(api) -> None:
    attempts = AUTH_FAILURES_PER_MINUTE + 10
    async with _from(api, "203.0.113.7") as attacker:
        codes = []
        for i in range(attempts):
            headers = {} if i % 4 == 0 else _well_formed_unknown_key()
            codes.append((await attacker.get("/v1/operations", headers=headers)).status_code)
        assert codes[:AUTH_FAILURES_PER_MINUTE] == [401] * AUTH_FAILURES_PER_MINUTE
        assert codes[-1] == 429 and codes.count(429) >= 5, codes
        r = await attacker.post("/v1/operations", json={"request": "x"})
        assert r.status_code == 429
        error = r.json()["error"]
        assert error["code"] == "rate_limited"
        assert "authentication" in error["message"] and error["details"] == []
        assert int(r.headers["retry-after"]) >= 1
        # The probes stay open to everyone.
        assert (await attacker.get("/healthz")).status_code == 200
    # Alice, from another address, is not affected; nor is another failing address.
    for _ in range(3):
        r = await api.client.get("/v1/operations", headers=api.auth("alice"))
        assert r.status_code == 200
    async with _from(api, "198.51.100.20") as other:
        r = await other.get("/v1/operations", headers=_well_formed_unknown_key())
        assert r.status_code == 401


async def test_an_address_over_its_failure_limit_does_not_reach_the_database(api) -> None:
    store = _count_key_lookups(api)
    async with _from(api, "203.0.113.8") as attacker:
        for _ in range(AUTH_FAILURES_PER_MINUTE):
            await attacker.get("/v1/operations", headers=_well_formed_unknown_key())
        before = store.reads
        results = await asyncio.gather(
            *(
                attacker.get("/v1/operations", headers=_well_formed_unknown_key())
                for _ in range(200)
            )
        )
    assert {r.status_code for r in results} == {429}
    assert store.reads - before <= 2  # a token or two may refill meanwhile


async def test_malformed_keys_are_refused_without_a_database_lookup(api) -> None:
    store = _count_key_lookups(api)
    malformed = [
        "cc_short",
        "cc_" + "x" * 42,
        "cc_" + "x" * 44,
        "cc_" + "!" * 43,
        "cc_" + "x" * 42 + ".",
        "cc_" + "x" * 41 + "+/",
        "CC_" + "x" * 43,
        "not-a-crewchief-key",
        "cc_" + "x" * 5000,
    ]
    for key in malformed:
        r = await api.client.get("/v1/operations", headers={"Authorization": f"Bearer {key}"})
        assert r.status_code == 401, key
        assert r.json()["error"]["code"] == "unauthorized"
    assert store.reads == 0


async def test_an_unknown_key_is_looked_up_once_while_it_is_remembered(api) -> None:
    store = _count_key_lookups(api)
    unknown = _well_formed_unknown_key()
    for _ in range(5):
        assert (await api.client.get("/v1/operations", headers=unknown)).status_code == 401
    assert store.reads == 1
    # Good keys are cached as before: one lookup for three requests.
    for _ in range(3):
        assert (await api.client.get("/v1/operations", headers=api.auth())).status_code == 200
    assert store.reads == 2


async def test_new_keys_work_at_once_and_revoked_keys_stay_refused(api) -> None:
    store = api.app.state.chief.services.store
    info, secret = await create_key(store, name="fresh", owner="carol")
    headers = {"Authorization": f"Bearer {secret}"}
    assert (await api.client.get("/v1/operations", headers=headers)).status_code == 200
    await revoke_key(store, info.id)
    deadline = time.monotonic() + KEY_CACHE_SECONDS + 2
    while (await api.client.get("/v1/operations", headers=headers)).status_code == 200:
        assert time.monotonic() < deadline, "revoked key still accepted"
        await asyncio.sleep(0.05)
    # Refused from now on, also once the short memory of unknown keys has expired.
    await asyncio.sleep(KEY_CACHE_SECONDS + 0.1)
    for _ in range(3):
        assert (await api.client.get("/v1/operations", headers=headers)).status_code == 401
    # A key created after an unknown key was refused works at once too.
    _, later = await create_key(store, name="later", owner="carol")
    r = await api.client.get("/v1/operations", headers={"Authorization": f"Bearer {later}"})
    assert r.status_code == 200


LOOPBACK_HOSTS = [
    "localhost",
    "localhost:8000",
    "LocalHost:1",
    "127.0.0.1",
    "127.0.0.1:8000",
    "[::1]",
    "[::1]:8000",
]
FOREIGN_HOSTS = [
    "evil.example",
    "evil.example:8000",
    "localhost.evil.example",
    "127.0.0.1.nip.io",
    "api",
    "10.0.0.1:8000",
    "[::1]evil",
    "::1",
    "localhost:80:80",
    "",
]


async def test_keyless_mode_answers_only_loopback_host_names(api_factory) -> None:
    async with api_factory(auth=False) as api:
        for host in LOOPBACK_HOSTS:
            r = await api.client.get("/v1/operations", headers={"Host": host})
            assert r.status_code == 200, (host, r.text)
        for host in FOREIGN_HOSTS:
            for method, path in [("GET", "/v1/operations"), ("POST", "/v1/operations")]:
                r = await api.client.request(
                    method, path, json={"request": "hi"}, headers={"Host": host}
                )
                assert r.status_code == 400, (host, r.text)
                error = r.json()["error"]
                assert error["code"] == "host_not_allowed"
                assert "loopback" in error["message"] and "localhost" in error["message"]
        r = await api.client.get("/v1/operations", headers={"Host": "localhost"})
        assert r.json()["items"] == []  # the refused POSTs started nothing


async def test_keyed_mode_accepts_any_host_name(api) -> None:
    r = await api.client.get("/v1/operations", headers={**api.auth(), "Host": "api.example.com"})
    assert r.status_code == 200


def test_keyless_server_checks_the_host_header(live_server_factory) -> None:
    server = live_server_factory(args=["--no-auth"])
    url = f"{server.url}/v1/operations"
    r = httpx.get(url, headers={"Host": "rebound.evil.example:8000"}, timeout=5)
    assert r.status_code == 400 and r.json()["error"]["code"] == "host_not_allowed"
    assert httpx.get(url, headers={"Host": "localhost"}, timeout=5).status_code == 200
    assert httpx.get(url, timeout=5).status_code == 200  # Host: 127.0.0.1:<port>


async def test_a_burst_with_a_valid_key_is_not_taken_for_failed_attempts(api_factory) -> None:
    """Many requests at once with a valid key whose cache entry is cold (or just expired)
    share one lookup: none of them counts as a failed authentication, so none gets 429."""
    async with api_factory(api={"auth_failures_per_minute": 5}) as api:
        calls = 0
        verify = api.app.state.chief.verify_key

        async def counted(secret: str):
            nonlocal calls
            calls += 1
            await asyncio.sleep(0.05)  # a slow database: everyone arrives during the lookup
            return await verify(secret)

        api.app.state.keys = KeyCache(counted)
        answers = await asyncio.gather(
            *(api.client.get("/v1/operations", headers=api.auth()) for _ in range(50))
        )
        assert [r.status_code for r in answers] == [200] * 50
        assert calls == 1
        # Failures still count, joined or not: a burst with an unknown key is refused.
        bad = _well_formed_unknown_key()
        answers = await asyncio.gather(
            *(api.client.get("/v1/operations", headers=bad) for _ in range(20))
        )
        codes = sorted(r.status_code for r in answers)
        assert codes.count(401) <= 5 and codes.count(429) >= 15
