"""Kill the process running an operation mid-task, then resume it from the checkpoint."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import plan_reply

pytestmark = pytest.mark.slow

# A hang guard, not a speed target: each crewchief subprocess (or the wait for the state it
# writes) normally takes 1 to 3 s.
HANG_GUARD_S = 60


def _env(home: Path, spec: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREWCHIEF_")}
    env.update(CREWCHIEF_HOME=str(home), CREWCHIEF_MODEL=spec, CREWCHIEF_ALLOW_MODEL_REQUESTS="0")
    return env


def _script(path: Path, slow_delay: float, fast_path_down: bool = False) -> str:
    rules = [{"node": "fast_path", "reply": {"error": "provider down"}}] if fast_path_down else []
    rules += [
        {
            "node": "plan",
            "reply": plan_reply("Quick part", "Slow part", ("Join the parts", [1, 2])),
        },
        {"node": "execute_task", "match": "Task:\nQuick part", "reply": "quick done"},
        {
            "node": "execute_task",
            "match": "Task:\nSlow part",
            "reply": {"text": "slow done", "delay": slow_delay},
        },
        {"node": "execute_task", "match": "Task:\nJoin the parts", "reply": "joined"},
        {"node": "synthesize", "reply": "all parts joined"},
    ]
    path.write_text(json.dumps({"rules": rules, "fallback": "error"}), encoding="utf-8")
    return f"fake:{path}"


def _wait_for(db: Path, query: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if db.exists():
            try:
                with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
                    if conn.execute(query).fetchone():
                        return
            except sqlite3.OperationalError:
                pass
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for: {query}")


def _run_and_kill(home: Path, spec: str, args: list[str], when: str) -> str:
    """Start ``crewchief run ARGS``, SIGKILL it once the query ``when`` finds a row; the op id."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "crewchief.cli", "run", *args],
        env=_env(home, spec),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    db = home / "crewchief.db"
    try:
        _wait_for(db, when, time.monotonic() + HANG_GUARD_S)
        time.sleep(0.3)  # let the write that followed land (a checkpoint, a model call starting)
        proc.send_signal(signal.SIGKILL)  # a process exit, not an exception
        proc.wait(timeout=HANG_GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    with sqlite3.connect(db) as conn:
        op_id, status = conn.execute("SELECT id, status FROM operations").fetchone()
    assert status == "running", "a killed process leaves the operation running"
    return op_id


def _resume(home: Path, spec: str, op_id: str) -> dict:
    """``crewchief ops resume ID --json``: the operation it prints."""
    resumed = subprocess.run(
        [sys.executable, "-m", "crewchief.cli", "ops", "resume", op_id, "--json"],
        env=_env(home, spec),
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        stdin=subprocess.DEVNULL,
    )
    assert resumed.returncode == 0, resumed.stderr
    return json.loads(resumed.stdout)


@pytest.mark.parametrize("route", ["plan", "fast"], ids=["planned", "fast-path-fell-back"])
def test_killed_operation_resumes_without_repeating_work(tmp_path: Path, route: str) -> None:
    """Planned from the start, or planned after the fast path failed: either way
    every step after the route is checkpointed."""
    home, script = tmp_path / "home", tmp_path / "script.json"
    fast_path_down = route == "fast"
    spec = _script(script, slow_delay=120, fast_path_down=fast_path_down)
    both_running = (
        "SELECT 1 FROM operation_tasks a JOIN operation_tasks b ON a.operation_id = b.operation_id "
        "WHERE a.sequence = 1 AND a.status = 'completed' AND b.sequence = 2 AND b.status = 'in_progress'"
    )
    op_id = _run_and_kill(
        home, spec, ["Build both parts and join them", "--route", route], both_running
    )

    spec = _script(script, slow_delay=0, fast_path_down=fast_path_down)  # healthy again
    op = _resume(home, spec, op_id)
    assert op["status"] == "completed" and op["answer"] == "all parts joined"
    assert [t["result"] for t in op["tasks"]] == ["quick done", "slow done", "joined"]

    events = op["events"]
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1)), "no gaps"
    keyed = [(e["type"], e["payload"].get("sequence")) for e in events]
    assert len(keyed) == len(set(keyed)), f"duplicate events: {keyed}"
    for seq in (1, 2, 3):
        assert keyed.count(("task.completed", seq)) == 1
    assert keyed.count(("operation.resumed", None)) == 1
    assert [t for t, _ in keyed].count("operation.completed") == 1
    assert [t for t, _ in keyed].count("fast_path.failed") == (1 if fast_path_down else 0)
    assert op["route"] == "plan"

    with sqlite3.connect(home / "crewchief.db") as conn:
        calls = dict(
            conn.execute(
                "SELECT task_sequence, COUNT(*) FROM model_calls WHERE node = 'execute_task' GROUP BY task_sequence"
            ).fetchall()
        )
        plans = conn.execute("SELECT COUNT(*) FROM model_calls WHERE node = 'plan'").fetchone()[0]
    assert calls == {1: 1, 2: 1, 3: 1}, "the finished task was not run again"
    assert plans == 1, "the plan was not made again"


def test_fast_path_killed_mid_call_runs_again_on_resume(tmp_path: Path) -> None:
    """A fast-path run is checkpointed only when it ends: resuming one that was
    killed runs it again from the start, and records nothing twice."""
    home, script = tmp_path / "home", tmp_path / "script.json"

    def write(delay: float) -> str:
        rules = [{"node": "fast_path", "reply": {"text": "A monad is a pattern.", "delay": delay}}]
        script.write_text(json.dumps({"rules": rules, "fallback": "error"}), encoding="utf-8")
        return f"fake:{script}"

    op_id = _run_and_kill(
        home,
        write(120),
        ["What is a monad?", "--route", "fast"],
        "SELECT 1 FROM operation_events WHERE type = 'route.decided'",
    )
    op = _resume(home, write(0), op_id)
    assert (op["status"], op["route"], op["answer"]) == (
        "completed",
        "fast",
        "A monad is a pattern.",
    )
    types = [e["type"] for e in op["events"]]
    assert [e["seq"] for e in op["events"]] == list(range(1, len(types) + 1)), "no gaps"
    for once in ("operation.started", "route.decided", "operation.resumed", "operation.completed"):
        assert types.count(once) == 1, types
    with sqlite3.connect(home / "crewchief.db") as conn:
        calls = conn.execute("SELECT COUNT(*) FROM model_calls WHERE node = 'fast_path'").fetchone()
    assert calls[0] == 1, "only the call that finished is in the usage ledger"


def test_resume_refuses_a_finished_operation(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = _env(home, "fake:default")
    run = subprocess.run(
        [sys.executable, "-m", "crewchief.cli", "run", "What is a monad?", "--json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    op_id = json.loads(run.stdout)["id"]
    again = subprocess.run(
        [sys.executable, "-m", "crewchief.cli", "ops", "resume", op_id],
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert again.returncode == 1
    assert f"operation {op_id} already ended (completed)" in again.stderr
