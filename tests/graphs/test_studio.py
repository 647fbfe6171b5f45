"""End-to-end check of the LangGraph Studio entry point.

Starts ``langgraph dev`` on the repo's ``langgraph.json`` (offline, scripted
``fake`` models, state in a temporary ``CREWCHIEF_HOME``) and drives the graph
through the LangGraph server's HTTP API, the way Studio does.

The server runs in a scratch directory that mirrors the repo root with
symlinks: ``langgraph dev`` resolves the paths in ``langgraph.json`` against
its working directory and keeps its in-memory state (threads, runs,
checkpoints) in ``./.langgraph_api``, which it reloads on the next start. A
mirror keeps that state out of the checkout, so the test neither sees nor
disturbs a developer's own Studio sessions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from crewchief.state import OperationContext

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "langgraph.json"
GRAPH_ID = "operation"  # the key under "graphs" in langgraph.json
PLAN_REQUEST = "Refactor the users module and add tests"
FAST_REQUEST = "What is a monad?"
PLAN_NODES = {"detect_simplicity", "plan", "dispatch", "execute_task", "synthesize"}
# Hang guards, not speed targets: `langgraph dev` normally answers GET /ok within 2 to 3 s,
# and one HTTP call (runs/wait included) takes about a second.
STARTUP_TIMEOUT = 60.0  # seconds for `langgraph dev` to answer GET /ok
REQUEST_TIMEOUT = 60.0  # seconds for one HTTP call (runs/wait included)
# Entries of the repo root not mirrored into the server's working directory.
NOT_MIRRORED = {".langgraph_api", "crewchief.toml", ".git", ".venv"}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


@dataclass
class Studio:
    """A running ``langgraph dev`` and a client for its API."""

    url: str
    client: httpx.Client
    log: Path
    home: Path
    proc: subprocess.Popen

    def log_tail(self, lines: int = 80) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError as exc:
            return f"<cannot read {self.log}: {exc}>"
        return "\n".join(ANSI.sub("", text).splitlines()[-lines:])

    def why(self, what: str) -> str:
        """An assertion message: ``what`` plus the tail of the server log."""
        state = "running" if self.proc.poll() is None else f"exited with {self.proc.returncode}"
        return (
            f"{what}\n--- langgraph dev ({state}), last lines of {self.log} ---\n{self.log_tail()}"
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Make a request that must succeed and return its JSON body."""
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise AssertionError(self.why(f"{method} {path} failed: {exc!r}")) from exc
        assert response.status_code == 200, self.why(
            f"{method} {path} -> {response.status_code}: {response.text[:2000]}"
        )
        return response.json()

    def new_thread(self) -> str:
        return self.call("POST", "/threads", json={})["thread_id"]

    def run_wait(self, request: str, context: dict[str, Any] | None = None) -> dict[str, Any]:
        """Run the graph on a fresh thread and return its output."""
        thread_id = self.new_thread()
        body: dict[str, Any] = {"assistant_id": GRAPH_ID, "input": {"request": request}}
        if context is not None:
            body["context"] = context
        output = self.call("POST", f"/threads/{thread_id}/runs/wait", json=body)
        # A run that raised comes back as 200 with {"__error__": {...}}; the log has the traceback.
        assert isinstance(output, dict) and "__error__" not in output, self.why(
            f"run of {request!r} (context={context}) failed: {output}"
        )
        return output


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _langgraph_executable() -> str:
    beside = Path(sys.executable).with_name("langgraph")
    if beside.exists():
        return str(beside)
    found = shutil.which("langgraph")
    if found is None:
        pytest.skip("the langgraph CLI is not installed (pip install 'langgraph-cli[inmem]')")
    return found


def _server_env(home: Path) -> dict[str, str]:
    # Nothing from the developer's shell that would pick other models, another
    # database or a config file, or send traces to LangSmith.
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CREWCHIEF_", "LANGSMITH_", "LANGCHAIN_"))
    }
    env.update(
        LANGGRAPH_CLI_NO_ANALYTICS="1",
        LANGGRAPH_NO_VERSION_CHECK="1",
        CREWCHIEF_HOME=str(home),
        CREWCHIEF_MODEL="fake:default",
        CREWCHIEF_ALLOW_MODEL_REQUESTS="0",
        PYTHONUNBUFFERED="1",
    )
    return env


def _stop(proc: subprocess.Popen) -> None:
    """Terminate the server's process group: SIGTERM, then SIGKILL after a grace period."""
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=10)


def _wait_until_ready(studio: Studio) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    last_error = "no attempt yet"
    while time.monotonic() < deadline:
        if studio.proc.poll() is not None:
            pytest.fail(studio.why("langgraph dev exited before it was ready"))
        try:
            response = httpx.get(f"{studio.url}/ok", timeout=2.0)
            if response.status_code == 200:
                return
            last_error = f"GET /ok -> {response.status_code}"
        except httpx.TransportError as exc:
            last_error = repr(exc)
        time.sleep(0.25)
    pytest.fail(studio.why(f"langgraph dev not ready after {STARTUP_TIMEOUT:.0f}s ({last_error})"))


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Studio]:
    langgraph = _langgraph_executable()
    root = tmp_path_factory.mktemp("studio")
    workdir = root / "repo"
    workdir.mkdir()
    for entry in REPO.iterdir():
        if entry.name not in NOT_MIRRORED:
            (workdir / entry.name).symlink_to(entry)
    home = root / "home"
    log = root / "langgraph-dev.log"
    port = _free_port()
    command = [
        langgraph, "dev",
        "--config", str(CONFIG),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--no-browser",
        "--no-reload",
    ]  # fmt: skip
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=workdir,
            env=_server_env(home),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so teardown reaches any children
        )
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=REQUEST_TIMEOUT) as client:
            server = Studio(url=url, client=client, log=log, home=home, proc=proc)
            _wait_until_ready(server)
            yield server
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def assistant_id(studio: Studio) -> str:
    found = studio.call("POST", "/assistants/search", json={"graph_id": GRAPH_ID, "limit": 10})
    assert len(found) == 1, studio.why(
        f"expected one assistant for graph {GRAPH_ID!r}, got {found}"
    )
    return found[0]["assistant_id"]


def _recorded_status(home: Path, operation_id: str) -> str | None:
    """The operation's status in the app database under ``home``; None when not recorded."""
    db = home / "crewchief.db"
    if not db.is_file():
        return None
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        row = conn.execute("SELECT status FROM operations WHERE id = ?", (operation_id,)).fetchone()
    return row[0] if row else None


def test_graph_is_served(studio: Studio, assistant_id: str) -> None:
    assistant = studio.call("GET", f"/assistants/{assistant_id}")
    assert assistant["graph_id"] == GRAPH_ID
    graph = studio.call("GET", f"/assistants/{assistant_id}/graph")
    nodes = {node["id"] for node in graph["nodes"]}
    assert PLAN_NODES | {"fast_path"} <= nodes, studio.why(f"graph nodes: {sorted(nodes)}")


def test_context_schema_describes_operation_context(studio: Studio, assistant_id: str) -> None:
    # /schemas wants the assistant's UUID; the graph id gets a 422.
    schemas = studio.call("GET", f"/assistants/{assistant_id}/schemas")
    context = schemas.get("context_schema")
    assert context, studio.why(f"no context_schema in {sorted(schemas)}")
    assert context.get("title") == "OperationContext"
    properties = context["properties"]
    assert {"workspace", "simplicity_threshold"} <= set(properties)
    for name, field in OperationContext.model_fields.items():
        assert name in properties, f"context field {name!r} missing from {sorted(properties)}"
        assert field.description, f"OperationContext.{name} has no description"
        assert properties[name].get("description") == field.description, (name, properties[name])


def test_input_and_output_schemas(studio: Studio, assistant_id: str) -> None:
    """Studio builds its input form from input_schema; the server sends null when it cannot build one."""
    schemas = studio.call("GET", f"/assistants/{assistant_id}/schemas")
    input_schema, output_schema = schemas.get("input_schema"), schemas.get("output_schema")
    assert input_schema and output_schema, studio.why(
        "input_schema/output_schema are null (look for 'Failed to get input schema' in the log)"
    )
    assert "request" in input_schema["properties"]
    assert "request" in input_schema.get("required", [])
    assert {"answer", "status", "route", "plan", "results"} <= set(output_schema["properties"])


def test_plan_route(studio: Studio) -> None:
    output = studio.run_wait(PLAN_REQUEST)
    why = studio.why(f"output: {json.dumps(output)[:3000]}")
    assert output.get("status") == "completed", why
    assert output.get("route") == "plan", why
    assert len(output.get("plan") or []) == 3, why
    results = output.get("results") or {}
    assert len(results) == 3, why
    assert all(outcome["status"] == "completed" for outcome in results.values()), why
    assert (output.get("answer") or "").strip(), why
    recorded = _recorded_status(studio.home, output["operation_id"])
    assert recorded == "completed", studio.why(
        f"operation {output['operation_id']} recorded as {recorded!r} in {studio.home / 'crewchief.db'}"
    )


def test_fast_route(studio: Studio) -> None:
    output = studio.run_wait(FAST_REQUEST)
    why = studio.why(f"output: {json.dumps(output)[:3000]}")
    assert output.get("status") == "completed", why
    assert output.get("route") == "fast", why
    assert not output.get("plan"), why
    assert (output.get("answer") or "").strip(), why


def test_run_context_reaches_the_graph(studio: Studio) -> None:
    # Context goes in the run's "context" field (not config.configurable) and
    # arrives as an OperationContext: threshold 0 sends even this request down
    # the fast path, and persist=false keeps it out of the app database.
    output = studio.run_wait(PLAN_REQUEST, context={"simplicity_threshold": 0.0, "persist": False})
    why = studio.why(f"output: {json.dumps(output)[:3000]}")
    assert output.get("status") == "completed", why
    assert output.get("route") == "fast", why
    assert _recorded_status(studio.home, output["operation_id"]) is None


def test_stream_updates(studio: Studio) -> None:
    thread_id = studio.new_thread()
    body = {
        "assistant_id": GRAPH_ID,
        "input": {"request": PLAN_REQUEST},
        "stream_mode": ["updates"],
    }
    events: list[tuple[str, Any]] = []
    with studio.client.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response:
        assert response.status_code == 200, studio.why(f"runs/stream -> {response.status_code}")
        event, data = "message", []
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line[len("event:") :].strip()
            elif line.startswith("data:"):
                data.append(line[len("data:") :].strip())
            elif not line and data:
                events.append((event, json.loads("\n".join(data))))
                event, data = "message", []
    errors = [payload for name, payload in events if name == "error"]
    assert not errors, studio.why(f"stream reported errors: {errors}")
    nodes = Counter(node for name, payload in events if name == "updates" for node in payload)
    assert PLAN_NODES <= set(nodes), studio.why(
        f"updates seen for {dict(nodes)}; events: {events[:20]}"
    )
    assert nodes["execute_task"] == 3, dict(nodes)
    assert "fast_path" not in nodes, dict(nodes)
