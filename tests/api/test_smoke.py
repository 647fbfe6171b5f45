"""The app answers over ASGI and a real server answers on loopback."""

from __future__ import annotations

import httpx

from tests.api.conftest import sse_events


async def test_create_then_read_back_over_asgi(api) -> None:
    r = await api.client.post(
        "/v1/operations", json={"request": "What is a monad?"}, headers=api.auth()
    )
    assert r.status_code == 202
    op = r.json()["id"]
    assert r.headers["location"] == f"/v1/operations/{op}"


def test_real_server_streams_a_finished_operation(live_server) -> None:
    h = live_server.auth()
    r = httpx.post(
        f"{live_server.url}/v1/operations", json={"request": "What is a monad?"}, headers=h
    )
    op = r.json()["id"]
    url = f"{live_server.url}/v1/operations/{op}/events"
    with httpx.stream("GET", url, headers=h, timeout=10) as s:
        assert s.headers["x-accel-buffering"] == "no"
        body = s.read().decode()
    events = [e for e in sse_events(body) if "id" in e]
    assert [e["id"] for e in events] == [str(i) for i in range(1, len(events) + 1)]
    assert events[-1]["event"] == "operation.completed"
