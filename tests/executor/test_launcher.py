"""``crewchief serve --workers N``: scaled mode on one machine, from one command."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import free_port, wait_ready
from tests.conftest import metric_samples, metric_total
from tests.executor.test_executors import HANG_GUARD_S

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _serve_env(tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CREWCHIEF_", "PROMETHEUS_"))}
    env.update(
        CREWCHIEF_HOME=str(tmp_path / "home"),
        CREWCHIEF_CONFIG=str(tmp_path / "none.toml"),
        CREWCHIEF_MODEL="fake:default",
        CREWCHIEF_ALLOW_MODEL_REQUESTS="0",
        CREWCHIEF_DATABASE_URL=postgres_url,  # a fresh database: everyone migrates at once
        CREWCHIEF_REDIS_URL=redis_url,
        CREWCHIEF_REDIS_PREFIX=redis_prefix,
    )
    (tmp_path / "none.toml").write_text("")
    return env


@contextlib.contextmanager
def _serve(tmp_path: Path, env: dict, *args: str) -> Iterator[tuple[str, subprocess.Popen]]:
    """``crewchief serve --no-auth --workers 2 ARGS``; stopped with SIGTERM at the end."""
    port = free_port()
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed with the process
    server = subprocess.Popen(
        [sys.executable, "-m", "crewchief.cli", "serve", "--no-auth", "--port", str(port)]
        + ["--workers", "2", *args],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, server, tmp_path / "serve.log")
        yield url, server
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=HANG_GUARD_S)
        log.close()


def _finish(url: str, op: str, log: Path) -> str:
    deadline = time.monotonic() + 2 * HANG_GUARD_S
    while (status := httpx.get(f"{url}/v1/operations/{op}", timeout=10).json()["status"]) in (
        "running",
    ):
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return status


def test_serve_with_workers_runs_operations_on_them(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    env = _serve_env(tmp_path, postgres_url, redis_url, redis_prefix)
    with _serve(tmp_path, env) as (url, server):
        workers = _children(server.pid)
        assert len(workers) == 2
        op = httpx.post(
            f"{url}/v1/operations", json={"request": "Add a docstring", "route": "plan"}, timeout=10
        ).json()["id"]
        assert _finish(url, op, tmp_path / "serve.log") == "completed"
        doctor = subprocess.run(
            [sys.executable, "-m", "crewchief.cli", "doctor"],
            env={**env, "CREWCHIEF_EXECUTOR": "queue"},
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_S,
        )
        assert "2 alive" in doctor.stdout, doctor.stdout + doctor.stderr
        # A worker that dies is replaced (and reaped: no zombie left to look alive).
        os.kill(workers[0], signal.SIGKILL)
        deadline = time.monotonic() + HANG_GUARD_S
        while (now := _children(server.pid)) == workers or len(now) != 2:
            assert time.monotonic() < deadline, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        assert workers[0] not in now and workers[1] in now
        assert not Path(f"/proc/{workers[0]}").exists()
        workers = now
        op = httpx.post(
            f"{url}/v1/operations", json={"request": "Add a docstring", "route": "plan"}, timeout=10
        ).json()["id"]
        assert _finish(url, op, tmp_path / "serve.log") == "completed"
    gone = time.monotonic() + HANG_GUARD_S
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < gone, "the workers outlived the server"
        time.sleep(0.1)


def _scrape(url: str) -> dict[tuple[str, frozenset], float]:
    return metric_samples(httpx.get(f"{url}/metrics", timeout=10).text)


def test_metrics_add_up_the_workers_and_logs_are_json(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    """One scrape of the server counts what its workers did; every line is a JSON object
    that says which request, operation and worker it is about."""
    env = _serve_env(tmp_path, postgres_url, redis_url, redis_prefix)
    env["CREWCHIEF_LOG_FORMAT"] = "json"
    env["CREWCHIEF_MODEL"] = "fake:default?delay=0.3"  # a stream stays open while it runs
    log = tmp_path / "serve.log"
    with _serve(tmp_path, env, "--access-log") as (url, _):
        before = _scrape(url)
        created = httpx.post(
            f"{url}/v1/operations",
            json={"request": "Add a docstring", "route": "plan"},
            headers={"X-Request-ID": "req-from-the-client"},
            timeout=10,
        )
        assert created.headers["x-request-id"] == "req-from-the-client"
        op = created.json()["id"]
        with httpx.stream("GET", f"{url}/v1/operations/{op}/events", timeout=10) as stream:
            lines = stream.iter_lines()  # kept: a dropped iterator closes the stream
            assert next(lines).startswith("retry:")
            during = _scrape(url)
            assert metric_total(during, "crewchief_sse_clients") >= 1
        assert _finish(url, op, log) == "completed"
        after = _scrape(url)

    def moved(name: str, **labels: str) -> float:
        return metric_total(after, name, **labels) - metric_total(before, name, **labels)

    assert moved("crewchief_operations_finished_total", route="plan", status="completed") == 1
    assert moved("crewchief_operation_duration_seconds_count", route="plan") == 1
    assert moved("crewchief_task_duration_seconds_count", status="completed") >= 2
    assert moved("crewchief_model_calls_total", outcome="ok") >= 4  # plan, tasks, synthesis
    assert moved("crewchief_model_tokens_total", kind="output") > 0
    assert moved("crewchief_queue_wait_seconds_count") >= 1
    assert moved("crewchief_run_duration_seconds_count", outcome="stopped") >= 1
    assert (
        moved("crewchief_http_requests_total", method="POST", route="/v1/operations", status="202")
        == 1
    )
    assert metric_total(after, "crewchief_workers_alive") == 2
    assert metric_total(after, "crewchief_queue_jobs", status="todo") == 0
    assert metric_total(after, "crewchief_operations", status="running") == 0
    assert metric_total(after, "crewchief_event_bus_degraded") == 0

    lines = [line for line in log.read_text().splitlines() if line.startswith("{")]
    records = [json.loads(line) for line in lines]
    assert {"time", "level", "logger", "message"} <= set(records[0])
    access = [r for r in records if r["logger"] == "uvicorn.access" and "POST" in r["message"]]
    assert access and access[0]["request_id"] == "req-from-the-client"
    runs = [r for r in records if r.get("operation_id") == op and r.get("worker")]
    assert runs, "no worker line about the operation"
