"""An event stream's live subscription is opened before its response starts: it must be
closed however the request ends (404, 204, a finished stream, a client gone before the
first byte), or each such request would leave one behind in the server."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import Api


async def _finished_operation(api: Api) -> str:
    response = await api.client.post(
        "/v1/operations", json={"request": "What is 2+2?", "route": "fast"}, headers=api.auth()
    )
    assert response.status_code == 202, response.text
    op = response.json()["id"]
    stream = await api.client.get(f"/v1/operations/{op}/events", headers=api.auth())
    assert stream.status_code == 200
    assert "event: operation.completed" in stream.text
    return op


def _followed(api: Api) -> list[str]:
    return api.app.state.chief.services.bus.followed()


async def test_requests_that_get_no_stream_leave_no_subscription(api: Api) -> None:
    op = await _finished_operation(api)
    assert _followed(api) == []

    unknown = await api.client.get("/v1/operations/no-such-op/events", headers=api.auth())
    assert unknown.status_code == 404
    others = await api.client.get(f"/v1/operations/{op}/events", headers=api.auth("bob"))
    assert others.status_code == 404  # bob does not see alice's operation
    last = await api.client.get(f"/v1/operations/{op}/events", headers=api.auth())
    last_seq = max(int(line[4:]) for line in last.text.splitlines() if line.startswith("id: "))
    ended = await api.client.get(
        f"/v1/operations/{op}/events", headers={**api.auth(), "Last-Event-ID": str(last_seq)}
    )
    assert ended.status_code == 204
    # A resume point past any event number there can be: nothing newer either.
    beyond = await api.client.get(
        f"/v1/operations/{op}/events", params={"last_event_id": str(10**30)}, headers=api.auth()
    )
    assert beyond.status_code == 204
    assert _followed(api) == []


async def test_a_client_gone_before_the_first_byte_leaves_no_subscription(api: Api) -> None:
    op = await _finished_operation(api)
    headers = [
        (b"authorization", api.auth()["Authorization"].encode()),
        (b"host", b"api"),
    ]
    scope: dict[str, Any] = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": f"/v1/operations/{op}/events",
        "raw_path": f"/v1/operations/{op}/events".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("api", 80),
    }

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    class Gone(Exception):
        pass

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start" and message["status"] == 200:
            raise Gone  # the connection closed as the response began

    try:
        await api.app(scope, receive, send)
    except Gone:
        pass
    assert _followed(api) == []
