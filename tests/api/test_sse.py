"""`GET /v1/operations/{id}/events` against a real `crewchief serve`: resume, heartbeat, fan-out.

Each test reads the raw byte stream over a real socket, the way a browser's
``EventSource`` or ``curl -N`` would.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import LiveServer
from tests.conftest import plan_reply, write_script

# The server's own model: four tasks, each model call 0.3 s, so an operation runs ~1.5 s.
SLOW = "fake:default?tasks=4&delay=0.3"
QUICK = "fake:default"
TIMEOUT = httpx.Timeout(10.0)  # a hang guard: every test finishes in a few seconds


# -- helpers (also used by test_cancel_api.py) ---------------------------------------------


def parse_block(lines: list[str]) -> dict[str, Any]:
    """One SSE block: ``{"id", "event", "data"}``, or ``{"comment": text}`` for ``: ...`` lines."""
    item: dict[str, Any] = {}
    for line in lines:
        if line.startswith(":"):
            item.setdefault("comment", line[1:].strip())
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        item[name] = json.loads(value) if name == "data" else value
    return item


def iter_blocks(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The stream's blocks as they arrive; ends when the server closes the stream."""
    lines: list[str] = []
    for line in response.iter_lines():
        if line:
            lines.append(line)
        elif lines:
            yield parse_block(lines)
            lines = []
    if lines:
        yield parse_block(lines)


def stored(block: dict[str, Any]) -> bool:
    """A stored event (it has an id), not a token delta, comment or ``retry:`` line."""
    return "id" in block


def start(server: LiveServer, owner: str = "alice", **body: Any) -> str:
    body.setdefault("request", "Build a small thing")
    r = httpx.post(
        f"{server.url}/v1/operations", json=body, headers=server.auth(owner), timeout=TIMEOUT
    )
    assert r.status_code == 202, r.text
    return r.json()["id"]


def every_alias(spec: str) -> dict[str, str]:
    """A request's ``models``: the same model for every alias."""
    return {"orchestrator": spec, "delegate": spec, "fast": spec}


def events_url(server: LiveServer, op: str) -> str:
    return f"{server.url}/v1/operations/{op}/events"


def read_events(
    server: LiveServer,
    op: str,
    *,
    limit: int | None = None,
    headers: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Stored events from one connection: the first ``limit`` (then hang up) or all of them."""
    out: list[dict[str, Any]] = []
    h = {**server.auth(), **(headers or {})}
    with httpx.stream(
        "GET", events_url(server, op), headers=h, params=params, timeout=TIMEOUT
    ) as r:
        assert r.status_code == 200, r.read()
        for block in iter_blocks(r):
            if stored(block):
                out.append(block)
                if limit is not None and len(out) >= limit:
                    break
    return out


async def follow(
    server: LiveServer, op: str, *, join_after: float = 0, params: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every block of one connection, opened ``join_after`` seconds from now (asyncio)."""
    await asyncio.sleep(join_after)
    out, lines = [], []
    async with (
        httpx.AsyncClient(timeout=TIMEOUT) as client,
        client.stream("GET", events_url(server, op), headers=server.auth(), params=params) as r,
    ):
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line:
                lines.append(line)
            elif lines:
                out.append(parse_block(lines))
                lines = []
    return out


def stored_events(server: LiveServer, op: str, owner: str = "alice") -> list[tuple[str, str]]:
    r = httpx.get(
        f"{server.url}/v1/operations/{op}",
        params={"events": "true"},
        headers=server.auth(owner),
        timeout=TIMEOUT,
    )
    assert r.status_code == 200, r.text
    return [(str(e["seq"]), e["type"]) for e in r.json()["events"]]


def ids_and_types(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["id"], e["event"]) for e in events]


def wait_for_status(server: LiveServer, op: str, *statuses: str) -> dict[str, Any]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        body = httpx.get(
            f"{server.url}/v1/operations/{op}", headers=server.auth(), timeout=TIMEOUT
        ).json()
        if body["status"] in statuses:
            return body
        time.sleep(0.1)
    raise AssertionError(f"operation {op} never reached {statuses}: {body['status']}")


# -- tests --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def slow_tokens(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A model spec: a one-task plan whose task streams 12 tokens 0.1 s apart."""
    return write_script(
        tmp_path_factory.mktemp("scripts"),
        [
            {"node": "plan", "reply": plan_reply("Write slowly")},
            {"node": "execute_task", "reply": {"chunks": ["word "] * 12, "token_delay": 0.1}},
        ],
    )


@pytest.fixture(scope="module")
def server(module_server_factory, slow_tokens: str) -> LiveServer:
    """One server for the module; each test starts its own operations."""
    env = {
        "CREWCHIEF_MODEL": SLOW,
        "CREWCHIEF_API_HEARTBEAT": "0.3",
        "CREWCHIEF_API_RATE_LIMIT": "0",
        "CREWCHIEF_API_ALLOWED_MODELS": f"{QUICK},{slow_tokens}",
    }
    return module_server_factory(env=env)


def test_resuming_after_dropped_connections_loses_and_repeats_nothing(server) -> None:
    op = start(server, route="plan")

    first = read_events(server, op, limit=3)
    assert wait_for_status(server, op, "running", "completed")["status"] == "running"
    # Resume with the header, hang up again mid-run, then resume with the query parameter.
    second = read_events(server, op, limit=4, headers={"Last-Event-ID": first[-1]["id"]})
    third = read_events(server, op, params={"last_event_id": second[-1]["id"]})

    seen = first + second + third
    assert [int(e["id"]) for e in seen] == list(range(1, len(seen) + 1))
    assert seen[-1]["event"] == "operation.completed"
    assert ids_and_types(seen) == stored_events(server, op)


def test_keep_alive_while_waiting_for_approval_and_while_deltas_are_left_out(
    server, slow_tokens: str
) -> None:
    op = start(server, route="plan", approve_plan=True, models=every_alias(slow_tokens))
    seen: list[str] = []  # event types, and "keep-alive" for each comment
    url = events_url(server, op)
    params = {"deltas": "false"}
    with httpx.stream("GET", url, headers=server.auth(), params=params, timeout=TIMEOUT) as r:
        for block in iter_blocks(r):
            seen.append(block.get("comment") or block.get("event") or "retry")
            if seen[-3:] == ["plan.awaiting_approval", "keep-alive", "keep-alive"]:
                assert wait_for_status(server, op, "awaiting_approval")
                decided = httpx.post(
                    f"{server.url}/v1/operations/{op}/plan",
                    json={"action": "accept"},
                    headers=server.auth(),
                    timeout=TIMEOUT,
                )
                assert decided.status_code == 202, decided.text
        # The loop ended: the server closed the stream after the terminal event.
    assert "plan.awaiting_approval" in seen
    assert seen[-1] == "operation.completed"
    # While the task's model streamed (its deltas not sent), the stream still kept alive.
    running = seen[seen.index("task.started") : seen.index("task.completed")]
    assert running.count("keep-alive") >= 2, seen
    assert "model.delta" not in seen


def test_three_clients_on_one_operation_see_the_same_events(server) -> None:
    op = start(server, route="plan")

    async def main() -> list[list[dict[str, Any]]]:
        # One from the start, two joining while the operation runs (replay, then live).
        return await asyncio.gather(*(follow(server, op, join_after=t) for t in (0, 0.2, 0.6)))

    one, two, three = (ids_and_types([b for b in c if stored(b)]) for c in asyncio.run(main()))
    assert one == two == three
    assert [int(i) for i, _ in one] == list(range(1, len(one) + 1))
    assert one[-1][1] == "operation.completed"
    assert one == stored_events(server, op)


def test_finished_operation_is_replayed_in_full_then_resuming_at_the_end_is_204(server) -> None:
    op = start(server, route="plan", models=every_alias(QUICK))
    wait_for_status(server, op, "completed")

    with httpx.stream("GET", events_url(server, op), headers=server.auth(), timeout=TIMEOUT) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        assert r.headers["x-accel-buffering"] == "no"
        assert "no-cache" in r.headers["cache-control"]
        blocks = list(iter_blocks(r))  # ends by itself: the operation is over
    events = [b for b in blocks if stored(b)]
    assert ids_and_types(events) == stored_events(server, op)
    assert events[-1]["event"] == "operation.completed"
    for e in events:
        assert e["data"]["seq"] == int(e["id"])
        assert e["data"]["type"] == e["event"]
        assert e["data"]["operation_id"] == op
        assert isinstance(e["data"]["payload"], dict)

    last = events[-1]["id"]
    tail = read_events(server, op, headers={"Last-Event-ID": str(int(last) - 2)})
    assert ids_and_types(tail) == ids_and_types(events[-2:])
    for resume in ({"headers": {"Last-Event-ID": last}}, {"params": {"last_event_id": last}}):
        h = {**server.auth(), **resume.get("headers", {})}
        r = httpx.get(
            events_url(server, op), headers=h, params=resume.get("params"), timeout=TIMEOUT
        )
        assert r.status_code == 204
        assert r.content == b""


def test_token_deltas_have_no_id_and_can_be_turned_off(server) -> None:
    with_deltas, without = start(server, route="plan"), start(server, route="plan")

    async def main() -> list[list[dict[str, Any]]]:
        # Both followed live, while their models stream.
        return await asyncio.gather(
            follow(server, with_deltas), follow(server, without, params={"deltas": "false"})
        )

    on, off = asyncio.run(main())
    deltas = [b for b in on if b.get("event") == "model.delta"]
    assert deltas, "no model.delta events while a model streamed its answer"
    for d in deltas:
        assert "id" not in d
        assert d["data"]["seq"] is None
        assert isinstance(d["data"]["payload"]["text"], str)
    assert {d["data"]["payload"]["node"] for d in deltas} >= {"execute_task", "synthesize"}

    assert not [b for b in off if b.get("event") == "model.delta"]
    assert ids_and_types([b for b in off if stored(b)]) == stored_events(server, without)


def test_resuming_past_the_last_event_of_a_running_operation_still_ends(server) -> None:
    op = start(server, route="plan")
    # An id from the future (e.g. of another operation): nothing to send, but the stream
    # must still close when the operation ends instead of idling forever.
    assert read_events(server, op, headers={"Last-Event-ID": "1000"}) == []
    assert wait_for_status(server, op, "completed")


def test_events_of_another_owner_are_404_and_a_bad_last_event_id_is_422(server) -> None:
    op = start(server, models=every_alias(QUICK))
    url = events_url(server, op)

    r = httpx.get(url, headers=server.auth("bob"), timeout=TIMEOUT)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "operation_not_found"
    assert httpx.get(url, timeout=TIMEOUT).status_code == 401

    r = httpx.get(url, headers={**server.auth(), "Last-Event-ID": "abc"}, timeout=TIMEOUT)
    assert r.status_code == 422
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert [d["path"] for d in error["details"]] == ["header.Last-Event-ID"]

    r = httpx.get(url, params={"last_event_id": "-1"}, headers=server.auth(), timeout=TIMEOUT)
    assert r.status_code == 422
    assert [d["path"] for d in r.json()["error"]["details"]] == ["query.last_event_id"]
