"""A process that dies leaves nothing stuck, and no operation ever runs twice.

Real ``crewchief serve`` processes on one SQLite home, killed with SIGKILL.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import _server_env, free_port, sse_events, stop_processes, wait_ready
from tests.conftest import plan_reply

pytestmark = pytest.mark.slow

# A hang guard, not a speed target: a server starts in 1 to 3 s, these runs take seconds.
HANG_GUARD_S = 60


def _script(path: Path, slow_s: float = 3) -> str:
    """Three tasks; the second answers after ``slow_s`` (a server is killed, or another
    process tries to resume the operation, while it waits)."""
    rules = [
        {"node": "plan", "reply": plan_reply("Quick part", "Slow part", ("Join", [1, 2]))},
        {"node": "execute_task", "match": "Task:\nQuick part", "reply": "quick done"},
        {
            "node": "execute_task",
            "match": "Task:\nSlow part",
            "reply": {"text": "slow done", "delay": slow_s},
        },
        {"node": "execute_task", "match": "Task:\nJoin", "reply": "joined"},
        {"node": "synthesize", "reply": "all parts joined"},
    ]
    path.write_text(json.dumps({"rules": rules, "fallback": "error"}), encoding="utf-8")
    return f"fake:{path}"


class Servers:
    """``crewchief serve`` processes sharing one home, started and killed at will."""

    def __init__(self, home: Path, env: dict[str, str]):
        home.mkdir(parents=True, exist_ok=True)
        (home / "none.toml").write_text("")
        self.home = home
        self.env = _server_env(home, env)
        self.started: list[subprocess.Popen] = []

    def start(self) -> str:
        port = free_port()
        log = open(self.home / f"server-{len(self.started)}.log", "w")  # noqa: SIM115
        process = subprocess.Popen(
            [sys.executable, "-m", "crewchief.cli", "serve", "--no-auth", "--port", str(port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        self.started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process, self.home / f"server-{len(self.started) - 1}.log", HANG_GUARD_S)
        return url

    def stop_all(self) -> None:
        stop_processes(self.started)

    def query(self, sql: str, *args: object) -> list[tuple]:
        with sqlite3.connect(
            f"file:{self.home / 'crewchief.db'}?mode=ro", uri=True, timeout=5
        ) as db:
            return db.execute(sql, args).fetchall()

    def wait_for(self, sql: str, *args: object) -> list[tuple]:
        deadline = time.monotonic() + HANG_GUARD_S
        while time.monotonic() < deadline:
            try:
                rows = self.query(sql, *args)
                if rows:
                    return rows
            except sqlite3.OperationalError:
                pass
            time.sleep(0.05)
        raise AssertionError(f"timed out waiting for: {sql}")


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    group = Servers(tmp_path / "home", {"CREWCHIEF_MODEL": _script(tmp_path / "script.json")})
    yield group
    group.stop_all()


@pytest.fixture
def slow_servers(tmp_path: Path) -> Iterator[Servers]:
    """Like ``servers``, with a slow task that outlasts a command-line process's start on a
    loaded machine (3 s did not)."""
    script = _script(tmp_path / "script.json", slow_s=12)
    group = Servers(tmp_path / "home", {"CREWCHIEF_MODEL": script})
    yield group
    group.stop_all()


def _slow_task_started(servers: Servers, op: str) -> None:
    servers.wait_for(
        "SELECT 1 FROM operation_tasks WHERE operation_id = ? AND sequence = 2"
        " AND status = 'in_progress'",
        op,
    )


def test_a_killed_servers_operations_finish_on_the_restarted_server(servers: Servers) -> None:
    url = servers.start()
    op = httpx.post(
        f"{url}/v1/operations", json={"request": "Join the parts", "route": "plan"}, timeout=10
    ).json()["id"]
    _slow_task_started(servers, op)
    seen = max(
        seq
        for (seq,) in servers.query("SELECT seq FROM operation_events WHERE operation_id = ?", op)
    )
    servers.started[0].send_signal(signal.SIGKILL)
    servers.started[0].wait(timeout=HANG_GUARD_S)
    assert servers.query("SELECT status FROM operations WHERE id = ?", op) == [("running",)]

    url = servers.start()  # same home: it takes the dead server's operation over
    with httpx.stream(
        "GET",
        f"{url}/v1/operations/{op}/events",
        headers={"Last-Event-ID": str(seen)},
        timeout=HANG_GUARD_S,
    ) as r:
        # Keep-alives reset the read timeout: the hang guard bounds the whole stream.
        deadline, parts = time.monotonic() + HANG_GUARD_S, []
        for text in r.iter_text():
            parts.append(text)
            assert time.monotonic() < deadline, "the stream did not end: " + "".join(parts)
        body = "".join(parts)
    events = sse_events(body)
    assert events[-1]["event"] == "operation.completed"
    assert "operation.resumed" in [e["event"] for e in events]

    rows = servers.query(
        "SELECT seq, type, payload FROM operation_events WHERE operation_id = ? ORDER BY seq", op
    )
    assert [seq for seq, _, _ in rows] == list(range(1, len(rows) + 1))  # no gap, no repeat
    completed = [json.loads(p)["sequence"] for _, t, p in rows if t == "task.completed"]
    assert sorted(completed) == [1, 2, 3]  # every task ended exactly once
    assert servers.query("SELECT status FROM operations WHERE id = ?", op) == [("completed",)]
    results = dict(
        servers.query("SELECT sequence, result FROM operation_tasks WHERE operation_id = ?", op)
    )
    assert results == {1: "quick done", 2: "slow done", 3: "joined"}


def test_resuming_an_operation_another_process_runs_is_refused(slow_servers: Servers) -> None:
    servers = slow_servers
    url = servers.start()
    op = httpx.post(
        f"{url}/v1/operations", json={"request": "Join the parts", "route": "plan"}, timeout=10
    ).json()["id"]
    _slow_task_started(servers, op)
    resumed = subprocess.run(
        [sys.executable, "-m", "crewchief.cli", "ops", "resume", op],
        env=servers.env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        stdin=subprocess.DEVNULL,
    )
    assert resumed.returncode != 0
    pid = servers.started[0].pid
    assert "running in another process" in resumed.stderr and f":{pid}:" in resumed.stderr
    servers.wait_for("SELECT 1 FROM operations WHERE id = ? AND status = 'completed'", op)
    # Run once: one executor call per task, one synthesis.
    calls = dict(
        servers.query(
            "SELECT node, COUNT(*) FROM model_calls WHERE operation_id = ? GROUP BY node", op
        )
    )
    assert calls["execute_task"] == 3 and calls["synthesize"] == 1
    assert servers.query(
        "SELECT COUNT(*) FROM operation_events WHERE operation_id = ? AND type = 'operation.resumed'",
        op,
    ) == [(0,)]
