"""The ``crewchief`` command against a real ``crewchief serve``: run, ops list/show/watch/cancel."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from crewchief.cli.remote import Remote, SSEParser
from tests.api.conftest import free_port, live_server, live_server_factory  # noqa: F401
from tests.conftest import plan_reply, write_script

SLOW = "fake:default?tasks=3&delay=0.6"
# Hang guards, not speed targets. A crewchief subprocess, or the wait for a line or a state,
# normally takes 1 to 3 s.
HANG_GUARD_S = 60
# The task of a _stuck_server operation waits this long unless it is cancelled.
STUCK_TASK_S = 60
# A cancel normally completes in about a second. This stays well under STUCK_TASK_S, so a
# cancel that waited for the task instead of interrupting it fails.
CANCEL_HANG_GUARD_S = 20


def client_env(server: Any, key: str | None = "alice", **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREWCHIEF_")}
    # An empty home of its own: whatever the CLI shows must come from the server.
    home = server.home.parent / "client-home"
    env.update(CREWCHIEF_HOME=str(home), CREWCHIEF_SERVER=server.url)
    if key is not None:
        env["CREWCHIEF_API_KEY"] = server.keys.get(key, key)
    env.update(extra)
    return env


def cli(
    env: dict[str, str], *args: str, timeout: float = HANG_GUARD_S
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crewchief.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


class Running:
    """A ``crewchief`` subprocess whose stderr is read line by line as it comes."""

    def __init__(self, env: dict[str, str], *args: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "crewchief.cli", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:  # type: ignore[union-attr]
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, text: str, timeout: float = HANG_GUARD_S) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=0.1)
            except queue.Empty:
                continue
            self.stderr.append(line)
            if text in line:
                return
        raise AssertionError(f"{text!r} not seen; stderr so far: {self.stderr}")

    def finish(self, timeout: float = HANG_GUARD_S) -> tuple[int, str, list[str]]:
        try:
            out = self.proc.stdout.read()  # type: ignore[union-attr]
            self.proc.wait(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(timeout=5)
        time.sleep(0.1)
        while not self.lines.empty():
            self.stderr.append(self.lines.get())
        return self.proc.returncode, out, self.stderr


def start(server: Any, owner: str = "alice", **body: Any) -> str:
    r = httpx.post(f"{server.url}/v1/operations", json=body, headers=server.auth(owner))
    assert r.status_code == 202, r.text
    return r.json()["id"]


def get(server: Any, op: str, owner: str = "alice") -> dict[str, Any]:
    return httpx.get(f"{server.url}/v1/operations/{op}", headers=server.auth(owner)).json()


def wait_until(server: Any, op: str, check: Any, timeout: float = HANG_GUARD_S) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = get(server, op)
        if check(current):
            return current
        time.sleep(0.05)
    raise AssertionError(f"operation {op} never got there: {get(server, op)}")


def op_id(stderr: str | list[str]) -> str:
    lines = stderr.splitlines() if isinstance(stderr, str) else stderr
    return next(line.split()[1] for line in lines if line.startswith("operation "))


def test_run_with_a_server_fast_planned_and_json(live_server) -> None:  # noqa: F811
    env = client_env(live_server)
    fast = cli(env, "run", "What is a monad?")
    assert fast.returncode == 0, fast.stderr
    assert fast.stdout.strip() == "Answer to: What is a monad?"
    assert fast.stderr.splitlines()[0] == f"crewchief · {live_server.url}"
    assert any(line.startswith("route: fast") for line in fast.stderr.splitlines())
    assert fast.stderr.splitlines()[-1].startswith("completed  · tokens in ")
    assert get(live_server, op_id(fast.stderr))["status"] == "completed"

    env.pop("CREWCHIEF_SERVER")
    planned = cli(env, "run", "Build the parser", "--route", "plan", "--server", live_server.url)
    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.strip() == "Finished 3 tasks for: Build the parser"
    lines = planned.stderr.splitlines()
    assert "plan: 3 tasks" in lines
    for seq in (1, 2, 3):
        assert sum(line.startswith(f"  ✓ {seq}. done") for line in lines) == 1, lines
    op = get(live_server, op_id(lines))
    assert op["route"] == "plan" and [t["status"] for t in op["tasks"]] == ["completed"] * 3

    as_json = cli(env, "run", "What is a monad?", "--json", "--server", live_server.url)
    assert as_json.returncode == 0, as_json.stderr
    shown = json.loads(as_json.stdout)
    assert shown["status"] == "completed" and shown["answer"] == "Answer to: What is a monad?"
    assert [e["seq"] for e in shown["events"]] == list(range(1, len(shown["events"]) + 1))


def test_ops_watch_follows_a_running_operation_and_shows_each_task_once(
    live_server_factory,  # noqa: F811
) -> None:
    server = live_server_factory(env={"CREWCHIEF_MODEL": SLOW})
    op = start(server, request="Write the docs", route="plan")
    wait_until(server, op, lambda o: any(t["status"] == "in_progress" for t in o["tasks"]))
    watch = Running(client_env(server), "ops", "watch", op)
    watch.wait_for("✓ 1. done")
    assert get(server, op)["status"] == "running"  # the watch is live, not a replay
    code, out, lines = watch.finish()
    assert code == 0, lines
    assert out.strip() == "Finished 3 tasks for: Write the docs"
    assert lines[0] == f"operation {op}"
    assert sum(line.startswith("route: plan (forced)") for line in lines) == 1
    for seq in (1, 2, 3):
        for mark in ("·", "…", "✓"):
            assert sum(line.startswith(f"  {mark} {seq}. ") for line in lines) == 1, lines
    assert lines[-1].startswith("completed  · tokens in ")

    # An ended operation: the whole story replayed, then the stored outcome.
    again = cli(client_env(server), "ops", "watch", op, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["answer"] == "Finished 3 tasks for: Write the docs"
    assert sum("✓ 3. done" in line for line in again.stderr.splitlines()) == 1


async def test_event_stream_resumes_after_dropped_connections(live_server_factory) -> None:  # noqa: F811
    # No heartbeat for 30 s, so a 0.2 s read timeout drops the connection at every pause.
    server = live_server_factory(env={"CREWCHIEF_MODEL": SLOW, "CREWCHIEF_API_HEARTBEAT": "30"})
    op = start(server, request="Write the docs", route="plan")
    async with Remote(server.url, server.keys["alice"], read_timeout=0.2) as remote:
        seen = [e async for e in remote.events(op, deltas=False)]
        assert remote.connections > 3, "the stream was never dropped"
        assert remote.duplicates == 0, "a reconnect did not resume after Last-Event-ID"
        stored = (await remote.get(op, events=True)).events
        assert [(e.seq, str(e.type)) for e in seen] == [(e.seq, e.type) for e in stored]
        assert seen[-1].terminal and seen[-1].payload == stored[-1].payload

        # Resuming after the terminal event: 204, nothing more, no error.
        before = remote.connections
        assert [e async for e in remote.events(op, after=seen[-1].seq)] == []
        assert remote.connections == before + 1
        tail = [e.seq async for e in remote.events(op, after=seen[-1].seq - 2)]
        assert tail == [seen[-1].seq - 1, seen[-1].seq]


def test_sse_parser_joins_data_lines_and_skips_comments() -> None:
    parser = SSEParser()
    lines = ["retry: 2000", "", ": keep-alive", "", "id: 7", "event: x", "data: a", "data:b", ""]
    messages = [m for m in map(parser.feed, lines) if m is not None]
    assert messages == [{"id": "7", "event": "x", "data": "a\nb"}]
    assert parser.retry == 2000


def test_ops_list_and_show_with_a_server_match_local_mode(live_server) -> None:  # noqa: F811
    ours = [start(live_server, request="What is a monad?")]
    ours.append(start(live_server, request="Build the parser", route="plan"))
    theirs = start(live_server, owner="bob", request="Bob's question?")
    for op in ours:
        wait_until(live_server, op, lambda o: o["status"] == "completed")
    env = client_env(live_server)

    remote = json.loads(cli(env, "ops", "list", "--json").stdout)
    local = json.loads(live_server.cli("ops", "list", "--json").stdout)
    assert [o["id"] for o in remote] == ours[::-1]
    assert remote == [o for o in local if o["id"] != theirs]
    remote_lines = cli(env, "ops", "list").stdout.splitlines()
    local_lines = live_server.cli("ops", "list").stdout.splitlines()
    assert remote_lines == [line for line in local_lines if not line.startswith(theirs)]
    limited = cli(env, "ops", "list", "--limit", "1", "--status", "completed", "--json")
    assert [o["id"] for o in json.loads(limited.stdout)] == ours[1:]
    # The list's filters, on the server and here alike.
    for args, expected in (
        (("--route", "plan"), ours[1:]),
        (("--route", "fast", "--search", "MONAD"), ours[:1]),
        (("--search", ours[0][:8]), ours[:1]),
        (("--since", "1h", "--until", "2999-01-01"), ours[::-1]),
        (("--since", "2999-01-01"), []),
    ):
        filtered = cli(env, "ops", "list", *args, "--json")
        assert [o["id"] for o in json.loads(filtered.stdout)] == expected, args
        here = live_server.cli("ops", "list", *args, "--json")
        assert [o["id"] for o in json.loads(here.stdout) if o["id"] != theirs] == expected, args
    for where in (lambda *a: cli(env, *a), lambda *a: live_server.cli(*a, check=False)):
        bad = where("ops", "list", "--since", "last tuesday")
        assert bad.returncode == 2 and "since" in bad.stderr, bad.stderr

    for args in (("ops", "show", ours[1]), ("ops", "show", ours[1], "--json")):
        shown = cli(env, *args)
        assert shown.returncode == 0, shown.stderr
        assert shown.stdout == live_server.cli(*args).stdout
    assert "Finished 3 tasks" in cli(env, "ops", "show", ours[1]).stdout

    hidden = cli(env, "ops", "show", theirs)
    assert hidden.returncode == 1
    assert f"error: operation_not_found: operation '{theirs}' does not exist" in hidden.stderr


def test_bad_key_unreachable_server_and_api_errors_are_clear(live_server, tmp_path) -> None:  # noqa: F811
    wrong = cli(client_env(live_server, key="cc_not_a_key"), "ops", "list")
    assert wrong.returncode == 2
    assert "refused the API key" in wrong.stderr
    assert "--api-key" in wrong.stderr and "CREWCHIEF_API_KEY" in wrong.stderr
    missing = cli(client_env(live_server, key=None), "run", "hi")
    assert missing.returncode == 2
    assert "requires an API key: pass --api-key or set CREWCHIEF_API_KEY" in missing.stderr
    flag = cli(
        client_env(live_server, key=None), "ops", "list", "--api-key", live_server.keys["bob"]
    )
    assert flag.returncode == 0 and flag.stdout.strip() == "no operations"

    nowhere = f"http://127.0.0.1:{free_port()}"
    for args in (("ops", "list"), ("run", "hi"), ("ops", "watch", "op_x")):
        down = cli(client_env(live_server), *args, "--server", nowhere)
        assert down.returncode == 1, down.stderr
        assert f"error: cannot reach the crewchief server at {nowhere}: " in down.stderr

    env = client_env(live_server)
    unknown = cli(env, "ops", "watch", "nosuch")
    assert unknown.returncode == 1
    assert "error: operation_not_found: operation 'nosuch' does not exist" in unknown.stderr
    workspace = cli(env, "run", "hi", "--workspace", str(tmp_path))
    assert workspace.returncode == 2
    assert "error: invalid_request: body.workspace: this server allows no workspaces" in (
        workspace.stderr
    )
    resume = cli(env, "ops", "resume", "op_x")
    assert resume.returncode == 2 and "ops resume is not available with a server" in resume.stderr
    bad_url = cli(env, "ops", "list", "--server", "127.0.0.1:8000")
    assert bad_url.returncode == 2 and "expected an http:// or https:// URL" in bad_url.stderr


def _stuck_server(factory: Any, tmp_path: Path) -> Any:
    spec = write_script(
        tmp_path,
        [
            {"node": "plan", "reply": plan_reply("Wait a long time")},
            {"node": "execute_task", "reply": {"text": "never", "delay": STUCK_TASK_S}},
        ],
    )
    return factory(env={"CREWCHIEF_MODEL": spec})


def test_ops_cancel_with_a_server_and_locally(live_server_factory, tmp_path) -> None:  # noqa: F811
    server = _stuck_server(live_server_factory, tmp_path)
    env = client_env(server)
    op = start(server, request="Wait for it", route="plan")
    wait_until(server, op, lambda o: any(t["status"] == "in_progress" for t in o["tasks"]))
    cancelled = cli(env, "ops", "cancel", op, timeout=CANCEL_HANG_GUARD_S)
    assert cancelled.returncode == 0, cancelled.stderr
    assert cancelled.stdout.strip() == f"{op} cancelled"
    after = get(server, op)
    assert after["status"] == "cancelled" and after["tasks"][0]["status"] == "cancelled"
    assert cli(env, "ops", "cancel", op, "--json").returncode == 0

    # Locally (no server): an operation waiting for plan approval, in the server's database.
    waiting = start(server, request="Wait for it", route="plan", approve_plan=True)
    wait_until(server, waiting, lambda o: o["status"] == "awaiting_approval")
    local = server.cli("ops", "cancel", waiting)
    assert local.stdout.strip() == f"{waiting} cancelled"
    assert get(server, waiting)["status"] == "cancelled"


def test_ctrl_c_during_a_remote_run_cancels_it_on_the_server(
    live_server_factory,  # noqa: F811
    tmp_path,
) -> None:
    server = _stuck_server(live_server_factory, tmp_path)
    run = Running(client_env(server), "run", "Wait for it", "--route", "plan")
    run.wait_for("… 1. Doing: Wait a long time")
    run.proc.send_signal(signal.SIGINT)
    code, out, lines = run.finish(timeout=CANCEL_HANG_GUARD_S)
    assert code == 130, lines
    assert "cancelling…" in lines and lines[-1].startswith("cancelled")
    assert get(server, op_id(lines))["status"] == "cancelled"
