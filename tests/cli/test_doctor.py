"""``crewchief doctor`` says what this configuration lacks, and exits 1 until it is fixed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# A hang guard, not a speed target: each command takes a second or two.
HANG_GUARD_S = 60


def _crewchief(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {k: v for k, v in os.environ.items() if not k.startswith("CREWCHIEF_")}
    full.update(
        CREWCHIEF_HOME=str(home),
        CREWCHIEF_MODEL="fake:default",
        CREWCHIEF_ALLOW_MODEL_REQUESTS="0",
        CREWCHIEF_CONFIG=str(home / "none.toml"),
        **env,
    )
    home.mkdir(parents=True, exist_ok=True)
    (home / "none.toml").write_text("")
    return subprocess.run(
        [sys.executable, "-m", "crewchief.cli", *args],
        env=full,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        stdin=subprocess.DEVNULL,
    )


def _checks(home: Path, **env: str) -> tuple[int, dict[str, dict]]:
    done = _crewchief(home, "doctor", "--json", **env)
    return done.returncode, {c["name"]: c for c in json.loads(done.stdout)}


def test_embedded_needs_an_upgraded_database(tmp_path: Path) -> None:
    home = tmp_path / "home"
    code, checks = _checks(home)
    assert code == 1
    assert not checks["database"]["ok"] and checks["database"]["fix"] == "crewchief db upgrade"
    assert _crewchief(home, "db", "upgrade").returncode == 0
    code, checks = _checks(home)
    assert code == 0, checks
    assert {"database", "checkpoints", "models", "redis"} <= set(checks)


def test_an_unreachable_redis_is_named(tmp_path: Path) -> None:
    home = tmp_path / "home"
    _crewchief(home, "db", "upgrade")
    code, checks = _checks(home, CREWCHIEF_REDIS_URL="redis://127.0.0.1:1/0")
    assert code == 1
    assert not checks["redis"]["ok"] and "127.0.0.1:1" in checks["redis"]["detail"]


@pytest.mark.postgres
@pytest.mark.slow
def test_scaled_mode_needs_a_live_worker(tmp_path: Path, postgres_url: str, redis_url: str) -> None:
    home = tmp_path / "home"
    env = {
        "CREWCHIEF_DATABASE_URL": postgres_url,
        "CREWCHIEF_REDIS_URL": redis_url,
        "CREWCHIEF_EXECUTOR": "queue",
    }
    assert _crewchief(home, "db", "upgrade", **env).returncode == 0
    code, checks = _checks(home, **env)
    assert code == 1
    assert checks["queue"]["ok"] and not checks["workers"]["ok"]
    assert "crewchief worker" in checks["workers"]["fix"]
    full = {k: v for k, v in os.environ.items() if not k.startswith("CREWCHIEF_")}
    full.update(CREWCHIEF_HOME=str(home), CREWCHIEF_MODEL="fake:default", **env)
    full["CREWCHIEF_CONFIG"] = str(home / "none.toml")
    worker = subprocess.Popen(
        [sys.executable, "-m", "crewchief.cli", "worker"],
        env=full,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        for line in worker.stdout:  # bounded by the worker: it says ready, or exits
            if "ready" in line:
                break
        assert worker.poll() is None
        code, checks = _checks(home, **env)
        assert code == 0, checks
        assert checks["workers"]["detail"].startswith("1 alive")
    finally:
        worker.terminate()
        worker.wait(timeout=HANG_GUARD_S)
