"""The ``crewchief`` command, run as a user would: a real subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from crewchief.db.migrate import HEAD_REVISION
from tests.conftest import plan_reply, write_script

# Hang guards, not speed targets. A crewchief subprocess normally ends in 1 to 3 s.
HANG_GUARD_S = 60
# After Ctrl-C, `crewchief run` normally exits in about 0.5 s. This stays well under the
# running task's 60 s delay, so an exit that waited for the task instead of cancelling fails.
SIGINT_HANG_GUARD_S = 10


def crewchief(
    home: Path, *args: str, env: dict[str, str] | None = None, timeout: float = HANG_GUARD_S
) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CREWCHIEF_")}
    full_env.update(
        {
            "CREWCHIEF_HOME": str(home),
            "CREWCHIEF_ALLOW_MODEL_REQUESTS": "0",
            "CREWCHIEF_MODEL": "fake:default",
        },
        **(env or {}),
    )
    return subprocess.run(
        [sys.executable, "-m", "crewchief.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def test_run_then_ops_show_json(tmp_path: Path) -> None:
    spec = write_script(
        tmp_path,
        [
            {
                "node": "plan",
                "reply": plan_reply("Write module a", "Write module b", ("Write the glue", [1, 2])),
            },
            {
                "node": "execute_task",
                "match": "module a",
                "reply": {"text": "a written", "delay": 0.3},
            },
            {
                "node": "execute_task",
                "match": "module b",
                "reply": {"text": "b written", "delay": 0.3},
            },
        ],
    )
    home, workspace = tmp_path / "home", tmp_path / "ws"
    workspace.mkdir()
    run = crewchief(
        home,
        "run",
        "Build the two modules and glue them",
        "--workspace",
        str(workspace),
        env={"CREWCHIEF_MODEL": spec},
    )
    assert run.returncode == 0, run.stderr
    assert "route: plan" in run.stderr
    assert "✓ 3." in run.stderr
    op_id = next(
        line.split()[1] for line in run.stderr.splitlines() if line.startswith("operation ")
    )

    show = crewchief(home, "ops", "show", op_id, "--json", env={"CREWCHIEF_MODEL": spec})
    assert show.returncode == 0, show.stderr
    op = json.loads(show.stdout)
    assert op["status"] == "completed" and op["route"] == "plan"
    assert op["workspace"] == str(workspace.resolve())
    assert op["plan_text"].startswith("plan\n1. Write module a")
    tasks = op["tasks"]
    assert len(tasks) == 3 and all(t["status"] == "completed" for t in tasks)
    assert all(t["usage"]["input"] > 0 and t["started_at"] and t["completed_at"] for t in tasks)
    a, b = (
        {k: datetime.fromisoformat(t[k]) for k in ("started_at", "completed_at")} for t in tasks[:2]
    )
    assert a["started_at"] < b["completed_at"] and b["started_at"] < a["completed_at"], (
        "tasks 1 and 2 overlap"
    )
    seqs = [e["seq"] for e in op["events"]]
    assert seqs == list(range(1, len(seqs) + 1))
    assert op["usage"]["input"] == sum(m["input"] for m in op["usage_by_model"])

    listing = crewchief(home, "ops", "list")
    assert op_id in listing.stdout and "completed" in listing.stdout


def test_run_json_prints_the_final_operation(tmp_path: Path) -> None:
    run = crewchief(tmp_path / "home", "run", "What is a monad?", "--json")
    assert run.returncode == 0, run.stderr
    op = json.loads(run.stdout)
    assert op["route"] == "fast" and op["answer"] == "Answer to: What is a monad?"
    assert run.stderr.splitlines()[0].startswith("crewchief · orchestrator fake:default")


def test_progress_and_ops_show_report_the_simplicity_decision(tmp_path: Path) -> None:
    home = tmp_path / "home"
    run = crewchief(home, "run", "What is a monad?", "--route", "plan")
    assert run.returncode == 0, run.stderr
    route = next(line for line in run.stderr.splitlines() if line.startswith("route: "))
    # Forced, yet the detector's view is kept: a simple question, so the balanced tier.
    assert route.startswith("route: plan (forced) · tier balanced · simplicity ")
    assert float(route.split(" · ")[2].split()[1]) >= 0.9
    assert "phrased as a question" in route and "(→ fast)" in route
    op_id = next(
        line.split()[1] for line in run.stderr.splitlines() if line.startswith("operation ")
    )

    show = crewchief(home, "ops", "show", op_id)
    assert show.returncode == 0, show.stderr
    assert "route plan (forced)" in show.stdout
    line = next(ln for ln in show.stdout.splitlines() if ln.startswith("simplicity "))
    assert " · tier balanced: " in line and "phrased as a question" in line
    shown = json.loads(crewchief(home, "ops", "show", op_id, "--json").stdout)
    assert shown["route_forced"] is True
    assert shown["simplicity"]["tier"] == "balanced" and shown["simplicity"]["score"] >= 0.9
    assert shown["simplicity"]["reasons"] == [
        r.strip() for r in route.split(" · ", 3)[3].split(";")
    ]


def test_with_no_model_configured_the_first_line_names_the_local_model(tmp_path: Path) -> None:
    run = crewchief(tmp_path / "home", "run", "What is a monad?", env={"CREWCHIEF_MODEL": ""})
    first = run.stderr.splitlines()[0]
    assert "no model configured: every alias uses the local model qwen2.5-coder-1.5b" in first
    # Real model requests are disabled in tests, so the run stops before any operation.
    assert run.returncode == 1
    assert "local:qwen2.5-coder-1.5b' would make a real request" in run.stderr


def test_bad_input_gets_a_clear_error(tmp_path: Path) -> None:
    empty = crewchief(tmp_path / "home", "run", "  ")
    assert empty.returncode == 2 and "error: request: expected a non-empty string" in empty.stderr
    missing = crewchief(tmp_path / "home", "run", "hi", "--workspace", str(tmp_path / "nope"))
    assert missing.returncode == 2 and "workspace: expected an existing directory" in missing.stderr
    unknown = crewchief(tmp_path / "home", "ops", "show", "no-such-id")
    assert unknown.returncode == 1 and "operation 'no-such-id' does not exist" in unknown.stderr
    bad_env = crewchief(
        tmp_path / "home", "run", "hi", env={"CREWCHIEF_MAX_PARALLEL_TASKS": "lots"}
    )
    assert bad_env.returncode == 2 and "max_parallel_tasks" in bad_env.stderr
    bad_model = crewchief(tmp_path / "home", "run", "hi", env={"CREWCHIEF_MODEL": "nosuch:model"})
    assert (
        bad_model.returncode == 2
        and "models.orchestrator: unknown provider 'nosuch'" in bad_model.stderr
    )


def test_db_upgrade(tmp_path: Path) -> None:
    out = crewchief(tmp_path / "home", "db", "upgrade")
    assert out.returncode == 0, out.stderr
    assert f"revision {HEAD_REVISION}" in out.stdout
    assert (tmp_path / "home" / "crewchief.db").is_file()


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["ops", "show", "--help"]])
def test_help(args: list[str], tmp_path: Path) -> None:
    out = crewchief(tmp_path, *args)
    assert out.returncode == 0 and "usage: crewchief" in out.stdout


def test_help_does_not_import_heavy_modules() -> None:
    code = "import sys, crewchief.cli as c\ntry: c.main(['--help'])\nexcept SystemExit: pass\nprint(sorted(m for m in sys.modules if m.split('.')[0] in ('langgraph','langchain_core','sqlalchemy','rich','pydantic')))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_GUARD_S
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_ctrl_c_cancels_the_running_operation(tmp_path: Path) -> None:
    import signal
    import sqlite3
    import time

    spec = write_script(
        tmp_path,
        [
            {"node": "plan", "reply": plan_reply("Wait a long time")},
            {"node": "execute_task", "reply": {"text": "never", "delay": 60}},
        ],
    )
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREWCHIEF_")}
    env.update(CREWCHIEF_HOME=str(home), CREWCHIEF_MODEL=spec, CREWCHIEF_ALLOW_MODEL_REQUESTS="0")
    proc = subprocess.Popen(
        [sys.executable, "-m", "crewchief.cli", "run", "Wait for it", "--route", "plan"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + HANG_GUARD_S
        while time.monotonic() < deadline:
            try:
                with sqlite3.connect(f"file:{home / 'crewchief.db'}?mode=ro", uri=True) as conn:
                    if conn.execute(
                        "SELECT 1 FROM operation_tasks WHERE status = 'in_progress'"
                    ).fetchone():
                        break
            except sqlite3.OperationalError:
                pass
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=SIGINT_HANG_GUARD_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr
    assert "cancelled" in stderr.splitlines()[-1]
    listing = crewchief(home, "ops", "list", "--status", "cancelled", "--json")
    assert [op["status"] for op in json.loads(listing.stdout)] == ["cancelled"]
    assert (
        json.loads(crewchief(home, "ops", "list", "--status", "completed", "--json").stdout) == []
    )


def test_models_list_pull_and_rm_report_clearly(tmp_path: Path) -> None:
    home = tmp_path / "home"
    listed = crewchief(home, "models", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    assert set(rows) == {"qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"}
    assert not rows["qwen2.5-coder-0.5b"]["pulled"] and rows["qwen2.5-coder-1.5b"]["size"] > 10**9
    for args in (("pull", "llama-9000"), ("rm", "llama-9000")):
        run = crewchief(home, "models", *args)
        assert run.returncode == 2
        assert "unknown local model 'llama-9000'; available: qwen2.5-coder-0.5b" in run.stderr
    gone = crewchief(home, "models", "rm", "qwen2.5-coder-0.5b")
    assert gone.returncode == 0 and "was not pulled" in gone.stdout


def test_run_shows_meta_tool_calls_skills_and_refusals(tmp_path: Path) -> None:
    plan = plan_reply("Audit calc.py for unsafe input")
    plan["plan"]["tasks"][0]["skill"] = "security-audit"
    summary = {"name": "get_file_summary", "args": {"path": "calc.py"}}
    write = {"name": "write_file", "args": {"path": "calc.py", "content": "x"}}
    spec = write_script(
        tmp_path,
        [
            {
                "node": "plan",
                "alias": "orchestrator",
                "replies": [{"tool_calls": [summary]}, "READY", plan],
            },
            {"node": "plan", "alias": "delegate", "reply": "calc.py defines div."},
            {"node": "execute_task", "replies": [{"tool_calls": [write]}, "Findings: none"]},
        ],
    )
    home, workspace = tmp_path / "home", tmp_path / "ws"
    workspace.mkdir()
    (workspace / "calc.py").write_text("def div(a, b):\n    return a / b\n")
    run = crewchief(
        home,
        "run",
        "Audit calc.py",
        "--workspace",
        str(workspace),
        "--route",
        "plan",
        env={"CREWCHIEF_MODEL": spec},
    )
    assert run.returncode == 0, run.stderr
    lines = run.stderr.splitlines()
    assert any(
        line.startswith('planner: get_file_summary {"path": "calc.py"} → answered by fake:')
        for line in lines
    ), run.stderr
    assert (
        "  ⚙ 1. skill security-audit (orchestrator; read_file, list_files, grep_files, summarize_file, extract_symbols, search_code)"
        in lines
    )
    assert any(
        line.startswith("  ⊘ 1. refused write_file: write_file is not allowed") for line in lines
    )
    assert (workspace / "calc.py").read_text() == "def div(a, b):\n    return a / b\n"
