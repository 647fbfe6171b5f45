"""Property-based API tests: schemathesis drives every documented operation of the real app.

The app runs under uvicorn on a loopback port (one server for the module, with
the fake model, so operations finish at once) and every request carries a
valid API key. The check that matters is ``not_a_server_error``: no input,
however odd, may produce a 5xx. The other default checks (status codes,
content types and response bodies as documented, auth enforced, ...) run too.
Generated operation and task ids are sometimes swapped for real ones, so the
steering routes see operations that exist, not only 404s.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from crewchief.api import create_app
from crewchief.db import keys as api_keys
from crewchief.db.credentials import new_key
from crewchief.db.migrate import ensure_current
from crewchief.db.writer import Writer
from tests.api.conftest import free_port
from tests.conftest import make_settings

# schemathesis lives in .venv-fuzz (scripts/test.sh runs this module there): it needs a
# jsonschema-rs newer than the LangGraph dev server in the main environment allows.
schemathesis = pytest.importorskip(
    "schemathesis", reason="the API fuzz pass runs in .venv-fuzz (scripts/test.sh)"
)
from hypothesis import HealthCheck, settings  # noqa: E402 - installed with schemathesis

MAX_EXAMPLES = 100  # per operation; the whole module stays well under a minute on 2 cores

CONFIG = {
    # Unknown query parameters are ignored by design (as by most HTTP APIs; EventSource
    # polyfills add their own), so don't send them expecting a rejection.
    "generation": {"allow-extra-parameters": False, "database": "none"},
    "checks": {
        # A schema-valid request may still get a documented 422: the API checks what a
        # schema cannot say (a cursor it issued, a workspace under an allowed root, a
        # model the server allows, a non-blank request, metadata of at most 16 kB).
        "positive_data_acceptance": {"enabled": False},
        # Invalid and oversized: 413 (the body limit answers before validation) is fine.
        "negative_data_rejection": {
            "expected-statuses": ["400", "401", "403", "404", "405", "406", "409", "413"]
            + ["415", "422", "428", "429", "5xx"]
        },
    },
}

# The schema is the app's own document; no server is needed to read it.
schema = schemathesis.openapi.from_dict(
    create_app(make_settings(Path("/nonexistent/crewchief-openapi"))).openapi(),
    config=schemathesis.Config.from_dict(CONFIG),
)

# Real operations by state, filled in by the `server` fixture before any case is drawn.
REAL: dict[str, list[str]] = {"ended": [], "awaiting": []}


def _real_ids(path: str) -> list[str]:
    """Plans that await approval for the plan route; elsewhere also ended operations.

    Cancel gets only ended ones (so plans stay undecided for the plan route), and so
    do events: the stream of an operation that waits for approval stays open.
    """
    if path.endswith("/plan"):
        return REAL["awaiting"]
    if path.endswith(("/cancel", "/events")):
        return REAL["ended"]
    return REAL["ended"] + REAL["awaiting"]


@schema.hook
def map_path_parameters(context: Any, params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Point about half the cases at a real operation (and task 1-3), keeping validity.

    Only ids the schema accepts are swapped (for valid ones), so a case meant to be
    invalid stays invalid. The choice depends only on the drawn values: reproducible.
    """
    op = (params or {}).get("operation_id")
    real = _real_ids(context.operation.path)
    if not real or not isinstance(op, str) or not 0 < len(op) <= 64 or len(op) % 2:
        return params
    params = {**params, "operation_id": real[len(op) // 2 % len(real)]}
    task = params.get("task_id")
    if isinstance(task, int) and not isinstance(task, bool) and 1 <= task <= 1000:
        params["task_id"] = 1 + task % 3
    return params


class Server:
    def __init__(self, url: str, key: str):
        self.url = url
        self.headers = {"Authorization": f"Bearer {key}"}


async def _create_key(url: str) -> str:
    store = Writer(url)
    try:
        await ensure_current(store, url)
        _, secret = await api_keys.create_key(store, name="schemathesis", owner="fuzzer")
        return secret
    finally:
        await store.close()


def _seed(server: Server) -> None:
    """Operations that ended (fast and planned) and plans that await approval."""
    runs = [
        ("ended", {"request": "What is a monad?", "route": "fast"}, "completed"),
        ("ended", {"request": "Write the parser and its tests", "route": "plan"}, "completed"),
    ] + [
        ("awaiting", {"request": f"Plan refactor {i}", "route": "plan", "approve_plan": True},
         "awaiting_approval")
        for i in range(3)
    ]  # fmt: skip
    with httpx.Client(base_url=server.url, headers=server.headers, timeout=10) as client:
        expected = {}
        for group, body, status in runs:
            r = client.post("/v1/operations", json=body)
            assert r.status_code == 202, r.text
            REAL[group].append(r.json()["id"])
            expected[r.json()["id"]] = status
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            states = {op: client.get(f"/v1/operations/{op}").json()["status"] for op in expected}
            if states == expected:
                return
            time.sleep(0.05)
        raise AssertionError(f"seed operations did not settle: {states}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("schemathesis")
    # Schemathesis repeats each case without a key (its ignored-auth check): hundreds of
    # failed authentications from one address. Both limits are off.
    api = {"rate_limit_per_minute": 0, "auth_failures_per_minute": 0, "heartbeat_seconds": 1}
    # A key to encrypt owners' credentials with: without one, storing them is a 503.
    cfg = make_settings(home, api=api, secret_keys=[new_key()])
    key = asyncio.run(_create_key(cfg.resolved_database_url))
    port = free_port()
    app = create_app(cfg)
    uv = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
    )
    thread = threading.Thread(target=uv.run, name="schemathesis-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not uv.started:
        assert thread.is_alive() and time.monotonic() < deadline, "server did not start"
        time.sleep(0.05)
    instance = Server(f"http://127.0.0.1:{port}", key)
    try:
        _seed(instance)
        yield instance
    finally:
        uv.should_exit = True
        thread.join(timeout=30)
        for ids in REAL.values():
            ids.clear()


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    derandomize=True,  # the same cases on every run: a failure reproduces
    database=None,
)
def test_api(case: schemathesis.Case, server: Server) -> None:
    case.call_and_validate(base_url=server.url, headers=server.headers, timeout=15)
