"""`POST /v1/operations/{id}/cancel` against a real `crewchief serve`, watched on the event stream."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.api.conftest import LiveServer
from tests.api.test_sse import (
    TIMEOUT,
    events_url,
    every_alias,
    iter_blocks,
    start,
    stored,
    stored_events,
    wait_for_status,
)
from tests.conftest import plan_reply, write_script


def cancel(server: LiveServer, op: str, owner: str = "alice") -> httpx.Response:
    return httpx.post(
        f"{server.url}/v1/operations/{op}/cancel", headers=server.auth(owner), timeout=TIMEOUT
    )


@pytest.fixture(scope="module")
def stuck(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A model spec: a one-task plan whose task waits 30 s for its model."""
    return write_script(
        tmp_path_factory.mktemp("scripts"),
        [
            {"node": "plan", "reply": plan_reply("Wait for the model")},
            {"node": "execute_task", "reply": {"text": "too late", "delay": 30}},
        ],
    )


@pytest.fixture(scope="module")
def server(module_server_factory, stuck: str) -> LiveServer:
    """One server (model ``fake:default``, ``stuck`` allowed per operation) for the module."""
    env = {"CREWCHIEF_API_RATE_LIMIT": "0", "CREWCHIEF_API_ALLOWED_MODELS": stuck}
    return module_server_factory(env=env)


def test_cancel_during_a_task_ends_the_stream_promptly(server, stuck: str) -> None:
    op = start(server, route="plan", models=every_alias(stuck))
    seen: list[str] = []
    cancelled: dict[str, Any] = {}
    began = ended = 0.0
    with httpx.stream("GET", events_url(server, op), headers=server.auth(), timeout=TIMEOUT) as r:
        for block in iter_blocks(r):
            if not stored(block):
                continue
            seen.append(block["event"])
            if block["event"] == "task.started":
                # Another owner cannot cancel it.
                assert cancel(server, op, owner="bob").status_code == 404
                began = time.monotonic()
                r_cancel = cancel(server, op)
                assert r_cancel.status_code == 200, r_cancel.text
                cancelled = r_cancel.json()
        ended = time.monotonic()
    assert cancelled, f"no task.started in {seen}"
    assert ended - began < 10  # a hang guard: the model would have answered after 30 s
    assert seen[-1] == "operation.cancelled"
    assert "task.completed" not in seen
    assert cancelled["status"] == "cancelled"
    assert [t["status"] for t in cancelled["tasks"]] == ["cancelled"]
    assert cancelled["answer"] is None

    again = cancel(server, op)
    assert again.status_code == 200
    assert again.json()["status"] == "cancelled"
    assert again.json()["completed_at"] == cancelled["completed_at"]
    events = stored_events(server, op)
    assert [t for _, t in events].count("operation.cancelled") == 1
    assert events[-1][1] == "operation.cancelled"


def test_cancel_while_awaiting_approval_ends_the_stream(server) -> None:
    op = start(server, route="plan", approve_plan=True)
    wait_for_status(server, op, "awaiting_approval")
    h = server.auth()
    with httpx.stream("GET", events_url(server, op), headers=h, timeout=TIMEOUT) as r:
        blocks = iter_blocks(r)
        replayed = [next(b for b in blocks if stored(b) and b["event"] == "plan.awaiting_approval")]
        r_cancel = cancel(server, op)
        rest = [b["event"] for b in blocks if stored(b)]  # ends when the server closes it
    assert replayed and rest == ["operation.cancelled"]
    assert r_cancel.status_code == 200
    assert r_cancel.json()["status"] == "cancelled"
    # The plan can no longer be decided.
    r = httpx.post(
        f"{server.url}/v1/operations/{op}/plan",
        json={"action": "accept"},
        headers=h,
        timeout=TIMEOUT,
    )
    assert r.status_code == 409


def test_cancel_of_an_unknown_or_finished_operation(server) -> None:
    r = cancel(server, "no-such-operation")
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "operation_not_found"

    op = start(server)
    done = wait_for_status(server, op, "completed")
    events = stored_events(server, op)
    for _ in range(2):
        r = cancel(server, op)
        assert r.status_code == 200
        body = r.json()
        assert body["status"] == "completed"
        assert body["answer"] == done["answer"]
        assert body["completed_at"] == done["completed_at"]
    assert stored_events(server, op) == events  # nothing recorded
