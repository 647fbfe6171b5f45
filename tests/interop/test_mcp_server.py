"""crewchief as an MCP server, driven by the official MCP SDK client: over streamable HTTP
against a real ``crewchief serve`` (with API keys), and over stdio against ``crewchief mcp``."""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import pytest
from mcp.client import Client
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.api.conftest import LiveServer
from tests.api.conftest import module_server_factory as module_server_factory  # a fixture
from tests.conftest import plan_reply, write_script

pytestmark = pytest.mark.slow

ANSWER = "THE SCRIPTED ANSWER"
TASKS = ("Collect the facts", "Check the facts", ("Write the summary", [1, 2]))
# Every call of a test is bounded: a hang fails the test instead of the suite.
LIMIT_S = 60


@pytest.fixture(scope="module")
def script(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A model spec: a three-task plan whose tasks take a moment each, and a one-task plan
    whose task waits 30 s for its model when the request says SLOW."""
    return write_script(
        tmp_path_factory.mktemp("scripts"),
        [
            {"node": "plan", "match": "SLOW", "reply": plan_reply("Wait for the model")},
            {"node": "plan", "reply": plan_reply(*TASKS)},
            {"node": "execute_task", "match": "Wait for the model", "reply": {"delay": 30}},
            {"node": "execute_task", "reply": {"text": "done", "delay": 0.3}},
            {"node": "synthesize", "reply": ANSWER},
        ],
    )


@pytest.fixture(scope="module")
def server(module_server_factory: Callable[..., LiveServer], script: str) -> LiveServer:
    """One ``crewchief serve`` with API keys for the module (owners alice and bob)."""
    return module_server_factory(env={"CREWCHIEF_MODEL": script, "CREWCHIEF_API_RATE_LIMIT": "0"})


@asynccontextmanager
async def connect(server: LiveServer, owner: str = "alice", mode: str = "auto"):
    """The SDK's client on ``/mcp`` with the owner's key."""
    http = httpx2.AsyncClient(headers=server.auth(owner), timeout=httpx2.Timeout(30, read=120))
    async with (
        http,
        Client(streamable_http_client(f"{server.url}/mcp", http_client=http), mode=mode) as client,
    ):
        yield client


class Progress:
    """Progress notifications of one call: ``(progress, total, message)`` each."""

    def __init__(self) -> None:
        self.seen: list[tuple[float, float | None, str | None]] = []

    async def __call__(self, progress: float, total: float | None, message: str | None) -> None:
        self.seen.append((progress, total, message))

    @property
    def messages(self) -> list[str]:
        return [m or "" for _, _, m in self.seen]


async def start(client: Client, request: str, **arguments: Any) -> str:
    result = await client.call_tool("start_operation", {"request": request, **arguments})
    assert not result.is_error, result.content
    assert result.structured_content["status"] == "running"
    return result.structured_content["id"]


async def wait(client: Client, op: str, seconds: float, progress: Progress | None = None) -> dict:
    result = await client.call_tool(
        "wait_for_operation",
        {"operation_id": op, "timeout_seconds": seconds},
        progress_callback=progress,
    )
    assert not result.is_error, result.content
    return result.structured_content


def error_text(result: Any) -> str:
    assert result.is_error, result.structured_content
    return result.content[0].text


def assert_followed_to_the_end(progress: Progress, waited: dict) -> None:
    """Progress rose to the plan's three tasks, one notification per step, never down."""
    values = [p for p, _, _ in progress.seen]
    assert len(values) >= 4, progress.seen
    assert values == sorted(values) and values[0] < values[-1] == 3, progress.seen
    assert progress.seen[-1][1] == 3
    # A task that ran before the wait began is not announced; the last one starts within it.
    assert any("Doing: Write the summary" in m for m in progress.messages), progress.seen
    assert waited["reason"] == "ended"
    assert waited["status"] == "completed"
    assert waited["operation"]["answer"] == ANSWER
    assert [t["status"] for t in waited["operation"]["tasks"]] == ["completed"] * 3


# -- streamable HTTP ------------------------------------------------------------------------


async def test_tools_are_listed_with_schemas(server: LiveServer) -> None:
    with anyio.fail_after(LIMIT_S):
        async with connect(server) as client:
            tools = {t.name: t for t in (await client.list_tools()).tools}
            templates = (await client.list_resource_templates()).resource_templates
    assert set(tools) == {
        "start_operation", "get_operation", "wait_for_operation", "review_plan",
        "cancel_operation", "rerun_task", "search_workspace", "list_skills",
    }  # fmt: skip
    start_schema = tools["start_operation"].input_schema
    assert start_schema["required"] == ["request"]
    assert start_schema["properties"]["route"]["enum"] == ["auto", "fast", "plan"]
    assert tools["get_operation"].output_schema is not None
    assert tools["wait_for_operation"].annotations.read_only_hint is True
    assert {t.uri_template for t in templates} == {
        "crewchief://operations/{operation_id}/plan",
        "crewchief://operations/{operation_id}/events",
    }


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_start_and_wait_with_progress_to_the_answer(server: LiveServer, mode: str) -> None:
    """Both the 2026 single-exchange protocol and the handshake-era one (stateless) stream
    progress back on the call's response."""
    progress = Progress()
    with anyio.fail_after(LIMIT_S):
        async with connect(server, mode=mode) as client:
            op = await start(client, "summarize the facts", route="plan")
            waited = await wait(client, op, 45, progress)
            got = await client.call_tool("get_operation", {"operation_id": op})
    assert_followed_to_the_end(progress, waited)
    # get_operation answers what REST's GET /v1/operations/{id} answers.
    async with httpx.AsyncClient(headers=server.auth(), timeout=10) as http:
        rest = await http.get(f"{server.url}/v1/operations/{op}")
    assert got.structured_content == rest.json()


async def test_a_plan_awaiting_approval_ends_the_wait_and_review_plan_runs_it(
    server: LiveServer,
) -> None:
    with anyio.fail_after(LIMIT_S):
        async with connect(server) as client:
            op = await start(client, "summarize the facts", route="plan", approve_plan=True)
            progress = Progress()
            waiting = await wait(client, op, 30, progress)
            reviewed = await client.call_tool(
                "review_plan", {"operation_id": op, "action": "accept"}
            )
            done = await wait(client, op, 45)
    assert waiting["reason"] == "awaiting_approval"
    assert "review_plan" in waiting["next"]
    assert progress.seen[-1][1] == 3
    assert not reviewed.is_error and reviewed.structured_content["status"] == "running"
    assert done["status"] == "completed" and done["operation"]["answer"] == ANSWER


async def test_cancel_a_slow_operation(server: LiveServer) -> None:
    with anyio.fail_after(LIMIT_S):
        async with connect(server) as client:
            op = await start(client, "SLOW: wait for it", route="plan")
            progress = Progress()
            began = time.monotonic()
            waited = await wait(client, op, 3, progress)
            assert time.monotonic() - began < 10  # the wait is bounded by its timeout
            cancelled = await client.call_tool("cancel_operation", {"operation_id": op})
            after = await wait(client, op, 10)
    assert waited["reason"] == "timeout" and waited["status"] == "running"
    assert any("Doing: Wait for the model" in m for m in progress.messages), progress.seen
    assert not cancelled.is_error
    assert cancelled.structured_content["status"] == "cancelled"
    assert [t["status"] for t in cancelled.structured_content["tasks"]] == ["cancelled"]
    assert after["reason"] == "ended" and after["status"] == "cancelled"


def test_no_key_is_401_in_the_api_error_shape(server: LiveServer) -> None:
    body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    headers = {"Accept": "application/json, text/event-stream"}
    for extra in ({}, {"Authorization": "Bearer cc_not-a-key"}):
        r = httpx.post(f"{server.url}/mcp", json=body, headers={**headers, **extra}, timeout=10)
        assert r.status_code == 401
        assert r.json()["error"]["code"] == "unauthorized"
        assert r.headers["www-authenticate"].startswith("Bearer")
    # /mcp stays out of the REST API's OpenAPI document.
    doc = httpx.get(f"{server.url}/openapi.json", timeout=10).json()
    assert "/mcp" not in doc["paths"]


def _post(server: LiveServer, message: dict, **headers: str) -> httpx.Response:
    headers = {"Accept": "application/json, text/event-stream", **headers}
    return httpx.post(f"{server.url}/mcp", json=message, headers=headers, timeout=10)


def _sse_data(response: httpx.Response) -> dict:
    lines = [ln for ln in response.text.splitlines() if ln.startswith("data:")]
    return json.loads(lines[-1].removeprefix("data:"))


def test_stateless_and_served_whatever_the_host_name(server: LiveServer) -> None:
    """No session to stick to (any instance behind a load balancer answers any request), and
    no refusal of a public host name: the API key is the protection."""
    hello = {
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25", "capabilities": {},
            "clientInfo": {"name": "test", "version": "1"},
        },
    }  # fmt: skip
    public = {**server.auth(), "Host": "crewchief.example.com"}
    r = _post(server, hello, **public)
    assert r.status_code == 200, r.text
    assert "mcp-session-id" not in r.headers
    listing = {"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}}
    r = _post(server, listing, **public, **{"MCP-Protocol-Version": "2025-11-25"})
    assert r.status_code == 200, r.text
    assert "start_operation" in {t["name"] for t in _sse_data(r)["result"]["tools"]}


def test_keyless_dev_mode_answers_loopback_hosts_only(
    module_server_factory: Callable[..., LiveServer],  # noqa: F811 - the fixture
) -> None:
    dev = module_server_factory(args=["--no-auth"])
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    version = {"MCP-Protocol-Version": "2025-11-25"}
    assert _post(dev, listing, **version).status_code == 200
    refused = _post(dev, listing, Host="evil.example", **version)
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "host_not_allowed"


async def test_another_owners_operation_is_not_found(server: LiveServer) -> None:
    with anyio.fail_after(LIMIT_S):
        async with connect(server, "alice") as alice:
            op = await start(alice, "summarize the facts", route="plan")
            async with connect(server, "bob") as bob:
                for tool in ("get_operation", "wait_for_operation", "cancel_operation"):
                    result = await bob.call_tool(tool, {"operation_id": op})
                    assert error_text(result) == f"operation {op!r} does not exist"
                with pytest.raises(MCPError, match="does not exist"):
                    await bob.read_resource(f"crewchief://operations/{op}/plan")
            done = await wait(alice, op, 45)
    assert done["status"] == "completed"  # bob's cancel did not touch it


async def test_bad_arguments_get_errors_naming_them(server: LiveServer) -> None:
    with anyio.fail_after(LIMIT_S):
        async with connect(server) as client:
            results = [
                await client.call_tool("start_operation", arguments)
                for arguments in (
                    {"request": "x", "route": "slow"},
                    {},
                    {"request": "x", "color": "red"},
                    {"request": "x", "workspace": "/tmp"},
                    {"request": "x", "models": {"delegate": "openai:gpt-x"}},
                )
            ]
            rerun = await client.call_tool("rerun_task", {"operation_id": "x", "task": 0})
            edit = await client.call_tool("review_plan", {"operation_id": "x", "action": "edit"})
    texts = [error_text(r) for r in results]
    assert texts[0] == "route: expected one of auto, fast, plan, got 'slow'"
    assert texts[1] == "request: required"
    assert texts[2].startswith("color: unknown argument; expected any of approve_plan")
    # The server's REST rules hold here too: workspace roots, allowed models.
    assert texts[3].startswith("workspace: this server allows no workspaces")
    assert texts[4].startswith("models.delegate: 'openai:gpt-x' is not allowed on this server")
    assert error_text(rerun).startswith("task: input should be greater than or equal to 1")
    assert error_text(edit) == "tasks: Field required"


async def test_plan_and_events_resources(server: LiveServer) -> None:
    with anyio.fail_after(LIMIT_S):
        async with connect(server) as client:
            op = await start(client, "summarize the facts", route="plan")
            await wait(client, op, 45)
            plan = await client.read_resource(f"crewchief://operations/{op}/plan")
            events = await client.read_resource(f"crewchief://operations/{op}/events")
    body = json.loads(plan.contents[0].text)
    assert plan.contents[0].mime_type == "application/json"
    assert [t["description"] for t in body["tasks"]] == [
        "Collect the facts", "Check the facts", "Write the summary",
    ]  # fmt: skip
    assert body["tasks"][2]["depends_on"] == [1, 2]
    types = [e["type"] for e in json.loads(events.contents[0].text)["events"]]
    assert types[0] == "operation.started" and types[-1] == "operation.completed"
    assert types.count("task.completed") == 3


# -- stdio ------------------------------------------------------------------------------------


def _stdio_env(home: Path, script: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREWCHIEF_")}
    home.mkdir(parents=True, exist_ok=True)
    (home / "none.toml").write_text("")
    env.update(
        {
            "CREWCHIEF_HOME": str(home),
            "CREWCHIEF_CONFIG": str(home / "none.toml"),
            "CREWCHIEF_MODEL": script,
            "CREWCHIEF_ALLOW_MODEL_REQUESTS": "0",
        }
    )
    return env


async def test_stdio_serves_the_same_tools(tmp_path: Path, script: str) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "crewchief.cli", "mcp"],
        env=_stdio_env(tmp_path / "home", script),
    )
    workspace = tmp_path / "ws"
    workspace.mkdir()
    (workspace / "utils.py").write_text("def slugify(text):\n    return text.lower()\n")
    progress = Progress()
    with (tmp_path / "stderr.log").open("w") as errlog, anyio.fail_after(90):
        async with Client(stdio_client(params, errlog=errlog)) as client:
            names = {t.name for t in (await client.list_tools()).tools}
            op = await start(client, "summarize the facts", route="plan")
            waited = await wait(client, op, 45, progress)
            slow = await start(client, "SLOW: wait for it", route="plan")
            timed_out = await wait(client, slow, 1)
            cancelled = await client.call_tool("cancel_operation", {"operation_id": slow})
            found = await client.call_tool(
                "search_workspace",
                {"workspace": str(workspace), "query": "slugify text", "mode": "bm25"},
            )
            skills = await client.call_tool("list_skills", {})
    assert "start_operation" in names and "list_skills" in names
    assert_followed_to_the_end(progress, waited)
    assert timed_out["reason"] == "timeout"
    assert cancelled.structured_content["status"] == "cancelled"
    # The local user has no workspace roots: any existing directory can be searched.
    assert found.structured_content["hits"][0]["path"] == "utils.py"
    assert "debugging" in {s["name"] for s in skills.structured_content["skills"]}
    # Logs went to stderr, never into the protocol on stdout (the client would have failed).
    assert "Traceback" not in (tmp_path / "stderr.log").read_text()


async def test_stdio_close_cancels_what_still_runs(tmp_path: Path, script: str) -> None:
    home = tmp_path / "home"
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "crewchief.cli", "mcp"], env=_stdio_env(home, script)
    )
    with (tmp_path / "stderr.log").open("w") as errlog, anyio.fail_after(90):
        async with Client(stdio_client(params, errlog=errlog)) as client:
            op = await start(client, "SLOW: wait for it", route="plan")
            await wait(client, op, 1)
        # The client closed stdin and the server stopped; the operation was recorded cancelled.
        async with Client(stdio_client(params, errlog=errlog)) as client:
            got = await client.call_tool("get_operation", {"operation_id": op})
    assert got.structured_content["status"] == "cancelled"


async def test_another_instance_follows_an_operation_with_progress(
    server: LiveServer, module_server_factory: Callable[..., LiveServer]
) -> None:
    """/mcp keeps no session: an operation started through one API instance is waited for,
    with progress to its end, through another (which reads the events the first stores)."""
    other = module_server_factory(like=server)
    progress = Progress()
    with anyio.fail_after(LIMIT_S):
        async with connect(server) as first, connect(other) as second:
            op = await start(first, "summarize the facts", route="plan")
            waited = await wait(second, op, 45, progress)
    assert_followed_to_the_end(progress, waited)
