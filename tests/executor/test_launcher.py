"""``crewchief serve --workers N``: scaled mode on one machine, from one command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.api.conftest import free_port, wait_ready
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


def test_serve_with_workers_runs_operations_on_them(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CREWCHIEF_")}
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
    port = free_port()
    log = open(tmp_path / "serve.log", "w")  # noqa: SIM115 - closed with the process
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "crewchief.cli",
            "serve",
            "--no-auth",
            "--port",
            str(port),
            "--workers",
            "2",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url, server, tmp_path / "serve.log")
        deadline = time.monotonic() + HANG_GUARD_S
        workers = _children(server.pid)
        assert len(workers) == 2
        op = httpx.post(
            f"{url}/v1/operations", json={"request": "Add a docstring", "route": "plan"}, timeout=10
        ).json()["id"]
        while (status := httpx.get(f"{url}/v1/operations/{op}", timeout=10).json()["status"]) in (
            "running",
        ):
            assert time.monotonic() < deadline + HANG_GUARD_S, (tmp_path / "serve.log").read_text()
            time.sleep(0.1)
        assert status == "completed", (tmp_path / "serve.log").read_text()
        doctor = subprocess.run(
            [sys.executable, "-m", "crewchief.cli", "doctor"],
            env={**env, "CREWCHIEF_EXECUTOR": "queue"},
            capture_output=True,
            text=True,
            timeout=HANG_GUARD_S,
        )
        assert "2 alive" in doctor.stdout, doctor.stdout + doctor.stderr
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=HANG_GUARD_S)
    gone = time.monotonic() + HANG_GUARD_S
    while any(Path(f"/proc/{pid}").exists() for pid in workers):
        assert time.monotonic() < gone, "the workers outlived the server"
        time.sleep(0.1)
