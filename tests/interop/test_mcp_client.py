"""Executors and the planner use MCP servers' tools: the real mcp-server-time over stdio, and
a small test server (tests/interop/_mcp_servers.py) over stdio and streamable HTTP."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import ToolMessage

from crewchief import FakeChatModel, FakeScript
from crewchief.client.facade import Crewchief
from crewchief.config import Settings, load_settings
from crewchief.errors import ConfigError
from crewchief.mcp_config import McpServerConfig
from crewchief.skills.registry import SkillRegistry
from crewchief.tools.mcp import McpManager, McpTool
from tests.conftest import make_settings, plan_reply
from tests.skills.conftest import write_skill

TIME = {"command": sys.executable, "args": ["-m", "mcp_server_time", "--local-timezone", "UTC"]}
HELPER = str(Path(__file__).with_name("_mcp_servers.py"))
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d")
# No call may take long: each test's operation ends well within this.
BOUND_S = 30


def _settings(tmp_path: Path, servers: dict[str, dict[str, Any]], **extra: Any) -> Settings:
    return make_settings(tmp_path / "home", mcp={"servers": servers}, **extra)


def _helper(tmp_path: Path, **cfg: Any) -> dict[str, Any]:
    env = {"MCP_CALL_LOG": str(tmp_path / "calls.log")}
    return {"command": sys.executable, "args": [HELPER], "env": env, **cfg}


def _model(plan: dict[str, Any], *replies: Any, planner: list[Any] | None = None) -> FakeChatModel:
    rules: list[dict[str, Any]] = [
        # While exploring, the planner's replies come first; the plan is the last (it repeats).
        {"node": "plan", "replies": [*(planner or []), plan]},
        {"node": "execute_task", "replies": list(replies)},
        {"node": "synthesize", "reply": "Done."},
    ]
    return FakeChatModel(script=FakeScript(rules=rules, fallback="error"))


def _calls(*calls: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    return {"tool_calls": [{"name": name, "args": args} for name, args in calls]}


async def _run(
    settings: Settings, model: FakeChatModel, workspace: Path | None = None
) -> tuple[Any, dict[str, Any]]:
    """Run a planned operation; the stored operation and the MCP servers' status at its end."""
    async with Crewchief(settings, models={"orchestrator": model, "delegate": model}) as cc:
        started = time.monotonic()
        result = await cc.run("Do the task", workspace=workspace, route="plan")
        assert time.monotonic() - started < BOUND_S
        op = await cc.get(result.id, events=True)
        return op, cc.services.mcp.status()


def _tool_events(op: Any, kind: str = "task.tool_called") -> list[dict[str, Any]]:
    return [e.payload for e in op.events if e.type == kind and e.payload.get("tool")]


def _tool_messages(model: FakeChatModel) -> list[str]:
    calls = [c for c in model.calls if c["node"] == "execute_task"]
    return [str(m.content) for m in calls[-1]["messages"] if isinstance(m, ToolMessage)]


def _children(marker: str) -> list[int]:
    """Processes of ours whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == os.getpid() and marker in cmdline:
            found.append(int(entry.name))
    return found


def _skill_plan(skill: str) -> dict[str, Any]:
    plan = plan_reply("Tell the time")
    plan["plan"]["tasks"][0]["skill"] = skill
    return plan


@pytest.mark.slow
async def test_an_executor_uses_the_time_servers_tools_by_either_name(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"time": TIME})
    convert = {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}
    model = _model(
        plan_reply("Tell the time in UTC"),
        _calls(("mcp__time__get_current_time", {"timezone": "UTC"})),
        _calls(("mcp:time/convert_time", convert)),
        "It is now the time shown.",
    )
    op, status = await _run(settings, model)  # no workspace: the MCP tools alone
    assert op.status == "completed", op.error
    assert op.tasks[0].result == "It is now the time shown."
    calls = [c for c in model.calls if c["node"] == "execute_task"]
    assert "mcp__time__get_current_time" in calls[0]["tools"]
    assert "read_file" not in calls[0]["tools"], "file tools need a workspace"
    first, second = _tool_messages(model)
    assert '"timezone": "UTC"' in first and TIMESTAMP.search(first)
    assert "Asia/Tokyo" in second
    now, converted = _tool_events(op)
    assert (now["tool"], now["ok"], now["refused"], now["server"]) == (
        "mcp:time/get_current_time", True, False, "time")  # fmt: skip
    assert "UTC" in now["output"] and TIMESTAMP.search(now["output"])
    assert now["truncated"] is False and isinstance(now["duration_ms"], int)
    assert converted["tool"] == "mcp:time/convert_time" and converted["ok"]
    assert status["time"]["starts"] == 1 and status["time"]["calls"] == 2
    assert not _children("mcp_server_time"), "closing crewchief ends the server's process"


@pytest.mark.slow
async def test_a_skill_that_does_not_list_the_tool_is_refused_and_the_server_not_started(
    tmp_path: Path, user_dir: Path
) -> None:
    write_skill(user_dir, "files-only", allowed_tools="read_file")
    # Not the planner's either: with a workspace it would list (start) the server to explore.
    settings = _settings(tmp_path, {"time": {**TIME, "planner": False}}, skill_dirs=[str(user_dir)])
    workspace = tmp_path / "ws"
    workspace.mkdir()
    model = _model(
        _skill_plan("files-only"),
        _calls(("mcp__time__get_current_time", {"timezone": "UTC"})),
        "Could not tell the time.",
    )
    op, status = await _run(settings, model, workspace)
    assert op.status == "completed", op.error
    (refused,) = _tool_events(op)
    assert refused["tool"] == "mcp:time/get_current_time"
    assert refused["refused"] is True and refused["skill"] == "files-only"
    calls = [c for c in model.calls if c["node"] == "execute_task"]
    assert calls[0]["tools"] == ["read_file"]
    assert status["time"]["starts"] == 0 and status["time"]["calls"] == 0


@pytest.mark.slow
async def test_a_skill_listing_the_server_may_call_it(tmp_path: Path, user_dir: Path) -> None:
    write_skill(user_dir, "clock", allowed_tools="mcp:time/*")
    settings = _settings(tmp_path, {"time": TIME}, skill_dirs=[str(user_dir)])
    model = _model(
        _skill_plan("clock"), _calls(("mcp__time__get_current_time", {"timezone": "UTC"})), "Ok."
    )
    op, _ = await _run(settings, model)
    assert op.status == "completed", op.error
    (call,) = _tool_events(op)
    assert (call["tool"], call["ok"], call["skill"]) == ("mcp:time/get_current_time", True, "clock")
    activated = next(e.payload for e in op.events if e.type == "task.skill_activated")
    assert activated["tools"] == ["mcp:time/convert_time", "mcp:time/get_current_time"]


@pytest.mark.slow
@pytest.mark.parametrize("with_workspace", [True, False], ids=["workspace", "no-workspace"])
async def test_the_planner_may_call_mcp_tools_while_it_explores(
    tmp_path: Path, with_workspace: bool
) -> None:
    settings = _settings(tmp_path, {"time": TIME})
    workspace = None
    if with_workspace:
        workspace = tmp_path / "ws"
        workspace.mkdir()
        (workspace / "a.py").write_text("x = 1\n", encoding="utf-8")
    explore = [_calls(("mcp__time__get_current_time", {"timezone": "UTC"}))]
    model = _model(plan_reply("Tell the time"), "Told.", planner=explore)
    op, _ = await _run(settings, model, workspace)
    assert op.status == "completed", op.error
    (call,) = _tool_events(op, "plan.tool_called")
    assert call["tool"] == "mcp:time/get_current_time" and call["ok"] and call["server"] == "time"
    assert TIMESTAMP.search(call["answer"])


@pytest.mark.slow
async def test_a_server_that_dies_mid_call_is_restarted_on_the_next(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"tools": _helper(tmp_path)})
    model = _model(
        plan_reply("Use the tools"),
        _calls(("mcp__tools__die", {})),
        _calls(("mcp__tools__echo", {"text": "again"})),
        "Survived.",
    )
    op, status = await _run(settings, model)
    assert op.status == "completed", op.error
    died, echoed = _tool_events(op)
    assert died["ok"] is False and died["error"] == "disconnected"
    assert "restarted on the next call" in died["output"]
    assert echoed["ok"] and echoed["output"] == "echo: again" and echoed["restarted"] is True
    assert status["tools"]["starts"] == 2
    assert (tmp_path / "calls.log").read_text().split() == ["die", "echo"]


@pytest.mark.slow
async def test_a_slow_tool_times_out_and_the_server_stays_usable(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"tools": _helper(tmp_path, timeout_seconds=1)})
    model = _model(
        plan_reply("Use the tools"),
        _calls(("mcp__tools__slow", {"seconds": 60})),
        _calls(("mcp__tools__echo", {"text": "still here"})),
        "Done.",
    )
    started = time.monotonic()
    op, status = await _run(settings, model)
    assert time.monotonic() - started < 20
    slow, echoed = _tool_events(op)
    assert slow["ok"] is False and slow["error"] == "timeout"
    assert "timed out after 1s" in slow["output"] and slow["duration_ms"] < 5000
    assert echoed["ok"] and echoed["restarted"] is False
    assert status["tools"]["starts"] == 1


@pytest.mark.slow
async def test_a_huge_output_is_truncated_for_the_model(tmp_path: Path) -> None:
    settings = _settings(tmp_path, {"tools": _helper(tmp_path, max_output_chars=1000)})
    model = _model(
        plan_reply("Use the tools"), _calls(("mcp__tools__huge", {"chars": 50_000})), "Ok."
    )
    op, _ = await _run(settings, model)
    (call,) = _tool_events(op)
    assert call["ok"] and call["truncated"] is True
    (seen,) = _tool_messages(model)
    assert seen.startswith("0123456789") and len(seen) < 1200
    assert "[output truncated: 50,000 characters, the first 1,000 shown]" in seen


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    """The test server on streamable HTTP, on a free loopback port; stopped by its PID."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path / "http-server.log").open("w")
    process = subprocess.Popen(
        [sys.executable, HELPER, "--http", str(port)], stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "http-server.log").read_text()
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


@pytest.mark.slow
async def test_a_url_server_over_streamable_http(tmp_path: Path, http_server: str) -> None:
    server = {"url": http_server, "headers": {"X-Test": "1"}, "tools": ["echo", "pid"]}
    settings = _settings(tmp_path, {"remote": server})
    model = _model(
        plan_reply("Use the tools"), _calls(("mcp__remote__echo", {"text": "over http"})), "Ok."
    )
    op, status = await _run(settings, model)
    assert op.status == "completed", op.error
    (call,) = _tool_events(op)
    assert call["tool"] == "mcp:remote/echo" and call["ok"] and call["output"] == "echo: over http"
    offered = [c for c in model.calls if c["node"] == "execute_task"][0]["tools"]
    assert sorted(offered) == ["mcp__remote__echo", "mcp__remote__pid"], "only the listed tools"


@pytest.mark.slow
async def test_a_server_that_cannot_start_is_reported_unavailable_without_hanging(
    tmp_path: Path,
) -> None:
    manager = McpManager(
        {"gone": McpServerConfig(command=str(tmp_path / "no-such-server"), timeout_seconds=1)}
    )
    try:
        tools, problems = await manager.tools()
        assert tools == [] and "could not be started" in problems[0]
        tool = McpTool("gone", "anything", "", {"type": "object", "properties": {}})
        started = time.monotonic()
        results = [await manager.call(tool, {}) for _ in range(3)]
        assert time.monotonic() - started < 10, "backoff is bounded"
        assert [r.error for r in results] == ["start_failed", "start_failed", "unavailable"]
        assert "unavailable after 3 failures in a row" in results[-1].output
    finally:
        await manager.close()


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('command = "x"\nurl = "http://h/mcp"', "mcp.servers.s: Value error, set exactly one"),
        ("timeout_seconds = 5", "set exactly one of command"),
        ('url = "ftp://h"', "mcp.servers.s.url: Value error, expected an http:// or https://"),
        ('command = "x"\ntimeout_seconds = 0', "mcp.servers.s.timeout_seconds: Input should be"),
        ('command = "x"\nmax_output_chars = -1', "mcp.servers.s.max_output_chars"),
        ('url = "http://h/mcp"\nargs = ["a"]', "args apply to a command only"),
        ('command = "x"\nheaders = {A = "b"}', "headers apply to a url server only"),
        ('command = "x"\nport = 1', "mcp.servers.s.port: Extra inputs are not permitted"),
    ],
)
def test_bad_server_config_names_the_field(tmp_path: Path, toml: str, expected: str) -> None:
    path = tmp_path / "crewchief.toml"
    path.write_text(f"[mcp.servers.s]\n{toml}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=re.escape(expected)):
        load_settings(path, env={})


def test_a_bad_server_name_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "crewchief.toml"
    path.write_text('[mcp.servers."My Server"]\ncommand = "x"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="mcp.servers: .*server name 'My Server' is invalid"):
        load_settings(path, env={})


def test_mcp_entries_in_allowed_tools_are_checked_at_load(user_dir: Path) -> None:
    write_skill(user_dir, "good", allowed_tools="read_file mcp:time/* mcp:git/git_log")
    write_skill(user_dir, "bad", allowed_tools=["mcp:Time/now", "mcp:time/get_*"])
    registry = SkillRegistry.load([user_dir], builtins=False)
    meta = registry.meta("good")
    assert meta.allowed_tools == ("read_file", "mcp:time/*", "mcp:git/git_log")
    assert meta.tools_label == "read_file, mcp:time/*, mcp:git/git_log"
    (problem,) = registry.problems
    assert "'mcp:Time/now' is not an MCP tool" in problem.reason
    assert "'*' must stand alone" in problem.reason


@pytest.mark.slow
async def test_parallel_calls_share_one_start_and_each_gets_its_own_answer(tmp_path: Path) -> None:
    cfg = McpServerConfig(**_helper(tmp_path))
    manager = McpManager({"tools": cfg})
    try:
        echo = McpTool("tools", "echo", "", {"type": "object", "properties": {}})
        # All arrive before the server has started: one start, eight answers.
        results = await asyncio.gather(*(manager.call(echo, {"text": str(i)}) for i in range(8)))
        assert [r.output for r in results] == [f"echo: {i}" for i in range(8)]
        assert manager.status()["tools"]["starts"] == 1
    finally:
        await manager.close()
    assert not _children(HELPER), "close() ends the server's process"
