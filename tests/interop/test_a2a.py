"""crewchief as an A2A agent, driven with the official ``a2a-sdk`` client against a real
``crewchief serve``: the card, send (blocking and streaming), a plan waiting for approval,
cancel, get, auth and owners, and refusals of bad metadata."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from a2a.client import A2ACardResolver, ClientConfig, create_client
from a2a.client.client import Client
from a2a.types.a2a_pb2 import (
    CancelTaskRequest,
    GetTaskRequest,
    Message,
    Part,
    Role,
    SendMessageRequest,
    StreamResponse,
    SubscribeToTaskRequest,
    Task,
    TaskState,
)

from crewchief import __version__
from crewchief.skills.registry import SkillRegistry
from tests.api.conftest import (  # noqa: F401 - fixtures
    LiveServer,
    free_port,
    live_server_factory,
    module_server_factory,
    stop_processes,
    wait_ready,
)
from tests.conftest import plan_reply, write_script

pytestmark = pytest.mark.slow

TIMEOUT = 20.0  # a hang guard on every call: each finishes in a few seconds
ANSWER = "Paris is the capital of France."


@pytest.fixture(scope="module")
def server(
    module_server_factory,  # noqa: F811
    tmp_path_factory: pytest.TempPathFactory,
) -> LiveServer:
    """One server for the module: a scripted model (a fast answer, a two-task plan, and a
    reply that takes 30 s for requests saying SLOW)."""
    model = write_script(
        tmp_path_factory.mktemp("scripts"),
        [
            {"match": "SLOW", "reply": {"text": "too late", "delay": 30}},
            {"node": "fast_path", "match": "capital of France", "reply": ANSWER},
            {
                "node": "plan",
                "match": "two steps",
                "reply": plan_reply("Draft the outline", ("Write the summary", [1])),
            },
        ],
    )
    return module_server_factory(env={"CREWCHIEF_MODEL": model, "CREWCHIEF_API_RATE_LIMIT": "0"})


@contextlib.asynccontextmanager
async def a2a(
    server: LiveServer, owner: str | None = "alice", **config: Any
) -> AsyncIterator[Client]:
    """An A2A client for ``server`` from its card, with ``owner``'s key (None: no key)."""
    headers = server.auth(owner) if owner else {}
    async with httpx.AsyncClient(headers=headers, timeout=TIMEOUT) as http:
        config.setdefault("streaming", False)
        client = await create_client(server.url, ClientConfig(httpx_client=http, **config))
        try:
            yield client
        finally:
            await client.close()


def request(text: str, task_id: str | None = None, **metadata: Any) -> SendMessageRequest:
    message = Message(
        role=Role.ROLE_USER, message_id=uuid.uuid4().hex, parts=[Part(text=text)], task_id=task_id
    )
    if metadata:
        message.metadata.update(metadata)
    return SendMessageRequest(message=message)


async def send(client: Client, req: SendMessageRequest) -> list[StreamResponse]:
    async with asyncio.timeout(TIMEOUT):
        return [event async for event in client.send_message(req)]


async def get(client: Client, task_id: str) -> Task:
    return await client.get_task(GetTaskRequest(id=task_id))


async def rest(server: LiveServer, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """A plain HTTP call to the server (the REST API, or raw JSON-RPC)."""
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        return await http.request(method, f"{server.url}{path}", **kwargs)


def text_of(parts: Any) -> str:
    return "".join(p.text for p in parts)


async def test_the_card_describes_the_agent_at_its_public_url(server) -> None:
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:  # no key: the card is public
        card = await A2ACardResolver(http, server.url).get_agent_card()
        behind = await http.get(
            f"{server.url}/.well-known/agent-card.json", headers={"Host": "agents.example:8443"}
        )
    assert card.name == "crewchief"
    assert card.version == __version__
    assert [(i.url, i.protocol_binding, i.protocol_version) for i in card.supported_interfaces] == [
        (f"{server.url}/a2a", "JSONRPC", "1.0"),
        (f"{server.url}/a2a", "JSONRPC", "0.3"),
    ]
    assert card.capabilities.streaming and not card.capabilities.push_notifications
    assert list(card.default_input_modes) == ["text/plain"]
    builtins = SkillRegistry.load().list()  # the server's home has no skills of its own
    assert [s.id for s in card.skills] == ["operation"] + [f"skill:{m.name}" for m in builtins]
    assert card.skills[1].description == builtins[0].description
    assert card.security_schemes["bearer"].http_auth_security_scheme.scheme == "bearer"
    assert "bearer" in card.security_requirements[0].schemes
    assert behind.json()["supportedInterfaces"][0]["url"] == "http://agents.example:8443/a2a"
    assert behind.json()["url"] == "http://agents.example:8443/a2a"  # for v0.3 clients


async def test_send_message_runs_an_operation_to_its_answer(server) -> None:
    async with a2a(server) as client:
        [reply] = await send(client, request("What is the capital of France?", route="fast"))
        task = reply.task
        assert task.status.state == TaskState.TASK_STATE_COMPLETED
        assert [text_of(a.parts) for a in task.artifacts] == [ANSWER]
        assert task.history[0].role == Role.ROLE_USER
        assert text_of(task.history[0].parts) == "What is the capital of France?"

        # Any instance answers GetTask from the database: the same task.
        stored = await get(client, task.id)
    assert stored.status.state == TaskState.TASK_STATE_COMPLETED
    assert stored.context_id == task.context_id
    assert [text_of(a.parts) for a in stored.artifacts] == [ANSWER]
    assert [m.message_id for m in stored.history] == [m.message_id for m in task.history]

    # The task is the operation, started by the key's owner.
    op = await rest(server, "GET", f"/v1/operations/{task.id}", headers=server.auth())
    assert op.status_code == 200
    assert (op.json()["status"], op.json()["answer"], op.json()["route"]) == (
        "completed",
        ANSWER,
        "fast",
    )

    # The v0.3 method names work on the same endpoint.
    old = await rest(
        server,
        "POST",
        "/a2a",
        json={"jsonrpc": "2.0", "id": 1, "method": "tasks/get", "params": {"id": task.id}},
        headers=server.auth(),
    )
    assert old.json()["result"]["status"]["state"] == "completed", old.text


async def test_a_streamed_plan_reports_each_task_then_completes(server) -> None:
    async with a2a(server, streaming=True) as client:
        events = await send(client, request("Do this in two steps, please.", route="plan"))
    first = events[0]
    assert first.task.status.state == TaskState.TASK_STATE_SUBMITTED
    updates = [e.status_update for e in events if e.HasField("status_update")]
    states = [u.status.state for u in updates]
    assert states[-1] == TaskState.TASK_STATE_COMPLETED
    assert set(states[:-1]) == {TaskState.TASK_STATE_WORKING}
    said = [text_of(u.status.message.parts) for u in updates[:-1]]
    assert said[0].startswith("Route decided: plan")
    assert said[1].startswith("Plan made")
    assert [s.split(":")[0] for s in said[2:]] == [
        "Task 1 started",
        "Task 1 completed",
        "Task 2 started",
        "Task 2 completed",
    ]
    [artifact] = [e.artifact_update.artifact for e in events if e.HasField("artifact_update")]
    assert text_of(artifact.parts).startswith("Finished 2 tasks")


async def test_a_plan_waiting_for_approval_asks_for_input_and_a_reply_accepts(server) -> None:
    async with a2a(server) as client:
        [reply] = await send(
            client, request("Plan two steps for me.", route="plan", approve_plan=True)
        )
        waiting = reply.task
        assert waiting.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        asked = text_of(waiting.status.message.parts)
        assert "accept" in asked and "Draft the outline" in asked
        assert (await get(client, waiting.id)).status.state == TaskState.TASK_STATE_INPUT_REQUIRED

        [done] = await send(client, request("accept", task_id=waiting.id))
    assert done.task.id == waiting.id
    assert done.task.status.state == TaskState.TASK_STATE_COMPLETED
    assert text_of(done.task.artifacts[0].parts).startswith("Finished 2 tasks")
    said = [text_of(m.parts) for m in done.task.history]
    assert "accept" in said and "Plan accepted." in said


async def test_a_reply_with_feedback_plans_again_and_reject_ends_the_task(server) -> None:
    async with a2a(server) as client:
        [reply] = await send(
            client, request("Plan two steps for me.", route="plan", approve_plan=True)
        )
        [again] = await send(client, request("Fewer steps, please.", task_id=reply.task.id))
        assert again.task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
        said = [text_of(m.parts) for m in again.task.history]
        assert "Planning again with the feedback: Fewer steps, please." in said
        [rejected] = await send(client, request("reject", task_id=reply.task.id))
        stored = await get(client, reply.task.id)
    assert rejected.task.status.state == TaskState.TASK_STATE_REJECTED
    assert stored.status.state == TaskState.TASK_STATE_REJECTED
    assert text_of(stored.status.message.parts) == "plan rejected"


async def test_cancel_ends_the_task_canceled_promptly(server) -> None:
    async with a2a(server, polling=True) as client:  # returns at once: the task runs on
        [reply] = await send(client, request("SLOW: take your time", route="fast"))
        task_id = reply.task.id
        assert reply.task.status.state not in (
            TaskState.TASK_STATE_COMPLETED,
            TaskState.TASK_STATE_FAILED,
        )
        # A reply is for a plan waiting for a decision; this task is working.
        with pytest.raises(Exception, match="only a task in input-required"):
            await send(client, request("accept", task_id=task_id))
        began = time.monotonic()
        async with asyncio.timeout(TIMEOUT):
            canceled = await client.cancel_task(CancelTaskRequest(id=task_id))
        took = time.monotonic() - began
        stored = await get(client, task_id)
    assert canceled.status.state == TaskState.TASK_STATE_CANCELED
    assert took < 10  # the model would have answered after 30 s
    assert stored.status.state == TaskState.TASK_STATE_CANCELED
    op = await rest(server, "GET", f"/v1/operations/{task_id}", headers=server.auth())
    assert op.json()["status"] == "cancelled"


async def test_a_call_without_a_key_is_refused_401(server) -> None:
    rpc = {"jsonrpc": "2.0", "id": 1, "method": "GetTask", "params": {"id": "x"}}
    r = await rest(server, "POST", "/a2a", json=rpc, headers={"A2A-Version": "1.0"})
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    assert r.json()["error"]["code"] == "unauthorized"
    async with a2a(server, owner=None) as client:  # the card is public; the call is not
        with pytest.raises(Exception, match="401"):
            await send(client, request("What is the capital of France?"))


async def test_another_owners_task_is_not_found(server) -> None:
    async with a2a(server) as alice:
        [reply] = await send(alice, request("What is the capital of France?", route="fast"))
    async with a2a(server, owner="bob") as bob:
        with pytest.raises(Exception, match="(?i)not found"):
            await get(bob, reply.task.id)
        with pytest.raises(Exception, match="(?i)not found"):
            await bob.cancel_task(CancelTaskRequest(id=reply.task.id))
        with pytest.raises(Exception, match="(?i)not found"):
            await send(bob, request("accept", task_id=reply.task.id))


@pytest.mark.parametrize(
    ("metadata", "field", "expected"),
    [
        ({"route": "sideways"}, "metadata.route", "expected 'fast' or 'plan'"),
        ({"approve_plan": "yes"}, "metadata.approve_plan", "expected true or false"),
        ({"workspace": "/tmp"}, "metadata.workspace", "this server allows no workspaces"),
        ({"decision": {"action": "accept"}}, "metadata.decision", "only a reply"),
    ],
)
async def test_bad_metadata_is_refused_naming_the_field(
    server, metadata: dict[str, Any], field: str, expected: str
) -> None:
    before = await rest(server, "GET", "/v1/operations/stats", headers=server.auth())
    async with a2a(server) as client:
        with pytest.raises(Exception) as refused:
            await send(client, request("What is the capital of France?", **metadata))
    assert f"{field}: {expected}" in str(refused.value)
    after = await rest(server, "GET", "/v1/operations/stats", headers=server.auth())
    assert after.json()["total"] == before.json()["total"]  # nothing was started


async def test_a_reply_to_a_finished_task_is_refused(server) -> None:
    async with a2a(server) as client:
        [reply] = await send(client, request("What is the capital of France?", route="fast"))
        with pytest.raises(Exception, match="is completed: only a task in input-required"):
            await send(client, request("accept", task_id=reply.task.id))


# -- two instances on one database: any of them answers for any task ---------------------


@pytest.fixture
def pair(live_server_factory, tmp_path) -> tuple[LiveServer, LiveServer]:  # noqa: F811
    """Two ``crewchief serve`` processes sharing one home (database): a plan whose two
    tasks take a second each, and 30 s replies for requests saying SLOW."""
    model = write_script(
        tmp_path,
        [
            {"match": "SLOW", "reply": {"text": "too late", "delay": 30}},
            {
                "node": "plan",
                "reply": plan_reply("Draft the outline", ("Write the summary", [1])),
            },
            {"node": "execute_task", "reply": {"text": "done", "delay": 1}},
        ],
    )
    env = {"CREWCHIEF_MODEL": model, "CREWCHIEF_API_RATE_LIMIT": "0"}
    first = live_server_factory(env={**env, "CREWCHIEF_LEASE_SECONDS": "3"})
    return first, live_server_factory(like=first)


async def test_another_instance_follows_gets_and_cancels_a_task(pair) -> None:
    first, second = pair
    async with a2a(first, polling=True) as on_first:
        [started] = await send(on_first, request("Plan it.", route="plan"))
        [slow] = await send(on_first, request("SLOW: take your time", route="fast"))
    async with a2a(second, streaming=True) as on_second:
        async with asyncio.timeout(TIMEOUT):
            followed = [
                e async for e in on_second.subscribe(SubscribeToTaskRequest(id=started.task.id))
            ]
        got = await get(on_second, started.task.id)
        async with asyncio.timeout(TIMEOUT):
            canceled = await on_second.cancel_task(CancelTaskRequest(id=slow.task.id))
    assert followed[0].task.id == started.task.id  # the task as it stood, then its updates
    said = [text_of(e.status_update.status.message.parts) for e in followed[1:-1]]
    assert any(s.startswith("Task 2 completed") for s in said), said
    assert followed[-1].status_update.status.state == TaskState.TASK_STATE_COMPLETED
    assert got.status.state == TaskState.TASK_STATE_COMPLETED
    assert text_of(got.artifacts[0].parts).startswith("Finished 2 tasks")
    assert canceled.status.state == TaskState.TASK_STATE_CANCELED
    # The first instance, which runs it, stops it (at its next lease renewal) and agrees.
    async with a2a(first) as on_first:
        deadline = time.monotonic() + TIMEOUT
        while (await get(on_first, slow.task.id)).status.state != TaskState.TASK_STATE_CANCELED:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.2)


async def test_a_plan_asked_on_one_instance_is_accepted_on_another(pair) -> None:
    first, second = pair
    async with a2a(first) as on_first:
        [waiting] = await send(on_first, request("Plan it.", route="plan", approve_plan=True))
    assert waiting.task.status.state == TaskState.TASK_STATE_INPUT_REQUIRED
    async with a2a(second) as on_second:  # holds nothing of the task: all from the database
        [done] = await send(on_second, request("accept", task_id=waiting.task.id))
    assert done.task.context_id == waiting.task.context_id
    assert done.task.status.state == TaskState.TASK_STATE_COMPLETED
    assert text_of(done.task.artifacts[0].parts).startswith("Finished 2 tasks")


async def test_a_task_outlives_the_instance_that_started_it(pair) -> None:
    first, second = pair
    async with a2a(first, polling=True) as on_first:
        [started] = await send(on_first, request("Plan it.", route="plan"))
    first.process.kill()  # no shutdown: its run lease expires, and the other takes over
    first.process.wait(timeout=TIMEOUT)
    async with a2a(second) as on_second:
        deadline = time.monotonic() + TIMEOUT
        task = await get(on_second, started.task.id)
        while task.status.state != TaskState.TASK_STATE_COMPLETED:
            assert time.monotonic() < deadline, task.status
            await asyncio.sleep(0.3)
            task = await get(on_second, started.task.id)
    assert text_of(task.artifacts[0].parts).startswith("Finished 2 tasks")
    assert text_of(task.history[0].parts) == "Plan it."
