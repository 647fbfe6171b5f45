"""The real local model end to end: llama-server with Qwen2.5-Coder-0.5B, offline.

The model and the server binary live in the crewchief home ($CREWCHIEF_HOME or the default), where
``scripts/test.sh`` pulls and builds them once (later runs reuse them). The
database of each test is a temporary file.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage, SystemMessage

from crewchief.client.facade import Crewchief
from crewchief.config import AliasConfig, _default_home, load_settings
from crewchief.errors import LocalModelError
from crewchief.local.build import ensure_llama_server
from crewchief.local.server import LlamaServer, ServerOptions
from crewchief.local.store import ModelStore
from crewchief.models.registry import ModelRegistry
from crewchief.models.types import CallInfo
from crewchief.nodes._plan_parsing import PLAN_SCHEMA
from crewchief.tools.files import FILE_TOOLS, run_file_tool
from crewchief.tools.workspace import Workspace

pytestmark = [pytest.mark.local_model, pytest.mark.slow]

MODEL = "qwen2.5-coder-0.5b"
SAMPLE = Path(__file__).parents[2] / "examples" / "sample-workspace"


@pytest.fixture(scope="module")
def local_home() -> Path:
    home = Path(os.environ.get("CREWCHIEF_HOME") or _default_home())
    ModelStore(home).pull(MODEL)
    ensure_llama_server(home)
    return home


@pytest.fixture(autouse=True)
def _allow_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CREWCHIEF_ALLOW_MODEL_REQUESTS", "local")


def _settings(tmp_path: Path, home: Path):
    # Greedy decoding: the same prompt gives the same reply on every run.
    alias = {"model": f"local:{MODEL}", "temperature": 0}
    return load_settings(
        config_file=None,
        env={},
        home=str(home),
        database_url=f"sqlite:///{tmp_path / 'cc.db'}",
        checkpoint_url=str(tmp_path / "ck.db"),
        models={a: alias for a in ("orchestrator", "delegate", "fast")},
        local={"parallel": 1, "context_size": 8192},
    )


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    shutil.copytree(SAMPLE, ws)
    return ws


async def test_fast_path_answer_from_the_real_model(tmp_path: Path, local_home: Path) -> None:
    async with Crewchief(_settings(tmp_path, local_home)) as chief:
        result = await chief.run("What is 2 + 3? Reply with just the number.", route="fast")
    assert result.status == "completed", result.error
    assert "5" in result.answer
    assert [m.model for m in result.usage_by_model] == [f"local:{MODEL}"]
    assert result.usage.input > 0 and result.usage.output > 0


async def test_planned_operation_with_a_schema_valid_plan(
    tmp_path: Path, local_home: Path, workspace: Path
) -> None:
    async with Crewchief(_settings(tmp_path, local_home)) as chief:
        result = await chief.run(
            "Add a docstring to every function in utils.py", workspace=str(workspace), route="plan"
        )
        full = await chief.get(result.id, events=True)
    assert result.status == "completed", result.error
    types = [e.type for e in full.events]
    # Structured output: the first plan the model wrote was valid, no retry was needed.
    assert "plan.invalid" not in types and types.count("plan.generated") == 1
    plan = next(e.payload for e in full.events if e.type == "plan.generated")
    assert 1 <= len(plan["tasks"]) <= 12
    for task in plan["tasks"]:
        assert set(task) >= set(PLAN_SCHEMA["properties"]["tasks"]["items"]["required"])
        assert task["description"].strip() and task["active_form"].strip()
    assert all(t.status == "completed" for t in full.tasks)
    assert {m.alias for m in full.usage_by_model} >= {"orchestrator", "delegate"}


async def test_a_tool_call_written_as_text_is_repaired_and_executed(
    tmp_path: Path, local_home: Path, workspace: Path
) -> None:
    registry = ModelRegistry(_settings(tmp_path, local_home))
    try:
        reply = await registry.call(
            "delegate",
            [
                SystemMessage("You are a task executor with file tools. Call one tool at a time."),
                HumanMessage(
                    "Task: Read the file utils.py and tell me which functions it defines."
                ),
            ],
            effort="medium",
            info=CallInfo("execute_task"),
            tools=FILE_TOOLS,
        )
    finally:
        registry.close()
    assert reply.repairs and reply.repairs[0] == "parsed 1 tool call(s) written as text"
    [call] = reply.message.tool_calls
    assert call["name"] == "read_file" and call["args"]["path"].endswith("utils.py")
    outcome = run_file_tool(Workspace.open(workspace), call["name"], call["args"])
    assert outcome.ok and "import re" in outcome.output


def test_the_server_is_restarted_after_a_crash_and_stopped_on_close(
    tmp_path: Path, local_home: Path
) -> None:
    settings = _settings(tmp_path, local_home)
    registry = ModelRegistry(settings, {"fast": AliasConfig(model=f"local:{MODEL}")})
    [(_, model)] = registry.local_models()
    url = model.prepare()
    server = model._server
    first = server.pid
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.running() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert model.prepare() == url  # restarted, on the same port
    second = server.pid
    assert second != first and server.restarts == 1 and server.running()
    registry.close()
    assert not server.running()
    with pytest.raises(ProcessLookupError):
        os.kill(second, 0)


def test_a_server_that_cannot_start_says_why(tmp_path: Path, local_home: Path) -> None:
    binary = ensure_llama_server(local_home)
    bogus = tmp_path / "not-a-model.gguf"
    bogus.write_bytes(b"GGUF but not really")
    server = LlamaServer(
        ServerOptions(binary, bogus, alias="bogus", log_path=tmp_path / "server.log")
    )
    with pytest.raises(LocalModelError, match="exited with code .* while starting"):
        server.ensure_running()
    assert not server.running()


def test_the_server_dies_with_a_killed_crewchief(tmp_path: Path, local_home: Path) -> None:
    binary = ensure_llama_server(local_home)
    model = ModelStore(local_home).require(MODEL)
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from crewchief.local.server import LlamaServer, ServerOptions\n"
        "s = LlamaServer(ServerOptions(Path(sys.argv[1]), Path(sys.argv[2]), alias='t',"
        " context_size=2048, parallel=1))\n"
        "s.ensure_running()\n"
        "print(s.pid, flush=True)\n"
        "time.sleep(120)\n"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(binary), str(model)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        server_pid = int(parent.stdout.readline())
        os.kill(server_pid, 0)  # running
        parent.kill()  # SIGKILL: no atexit, no cleanup in crewchief
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(server_pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.1)
        with pytest.raises(ProcessLookupError):
            os.kill(server_pid, 0)
    finally:
        if parent.poll() is None:
            parent.kill()


def test_a_crash_loop_is_not_restarted_forever(tmp_path: Path, local_home: Path) -> None:
    binary = ensure_llama_server(local_home)
    model = ModelStore(local_home).require(MODEL)
    server = LlamaServer(
        ServerOptions(binary, model, alias="loop", context_size=2048, parallel=1,
                      log_path=tmp_path / "server.log")
    )  # fmt: skip
    try:
        server.ensure_running()
        for attempt in range(3):
            pid = server.pid
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 10
            while server.running() and time.monotonic() < deadline:
                time.sleep(0.05)
            if attempt < 2:
                server.ensure_running()
        with pytest.raises(LocalModelError, match="crashed 3 times .* not restarting"):
            server.ensure_running()
        assert server.restarts == 2 and not server.running()
    finally:
        server.stop()
