"""scripts/bootstrap.sh installs what each command needs, whichever command ran first.

pip is replaced by a recorder in the venvs (it would download and take minutes); the
script's own logic, what it asks pip for and when, runs for real.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A hang guard, not a speed target: each run takes well under a second.
HANG_GUARD_S = 60

RECORDER = """#!/bin/sh
echo "$*" >> "$(dirname "$0")/../calls.log"
"""


def _checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "scripts").mkdir(parents=True)
    shutil.copy(ROOT / "scripts" / "bootstrap.sh", repo / "scripts" / "bootstrap.sh")
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    for venv in (".venv", ".venv-fuzz"):
        python = repo / venv / "bin" / "python"
        python.parent.mkdir(parents=True)
        python.write_text(RECORDER)
        python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return repo


def _bootstrap(repo: Path, extras: str | None = None) -> None:
    env = {k: v for k, v in os.environ.items() if k != "EXTRAS"}
    if extras is not None:
        env["EXTRAS"] = extras
    subprocess.run(
        ["bash", "scripts/bootstrap.sh"],
        cwd=repo,
        env=env,
        check=True,
        capture_output=True,
        timeout=HANG_GUARD_S,
    )


def _installs(repo: Path, venv: str) -> list[str]:
    log = repo / venv / "calls.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [line.split()[-1] for line in lines if " -e " in f" {line} "]


def test_the_demo_then_the_tests_installs_the_dev_extras(tmp_path: Path) -> None:
    repo = _checkout(tmp_path)
    _bootstrap(repo, "all")  # what the demo command runs
    assert _installs(repo, ".venv") == [".[all]"]
    _bootstrap(repo)  # what the test command runs
    assert _installs(repo, ".venv") == [".[all]", ".[all,dev]"]
    assert _installs(repo, ".venv-fuzz") == [".[fuzz]"]
    _bootstrap(repo, "all")  # the demo again: everything it needs is there
    _bootstrap(repo)
    assert _installs(repo, ".venv") == [".[all]", ".[all,dev]"]


def test_the_tests_then_the_demo_installs_the_union(tmp_path: Path) -> None:
    repo = _checkout(tmp_path)
    _bootstrap(repo)
    _bootstrap(repo, "all")
    assert _installs(repo, ".venv") == [".[dev]", ".[all,dev]"]


def test_a_changed_pyproject_installs_again(tmp_path: Path) -> None:
    repo = _checkout(tmp_path)
    _bootstrap(repo)
    stamp = repo / ".venv" / ".crewchief-installed"
    os.utime(stamp, (1, 1))  # older than pyproject.toml
    _bootstrap(repo)
    assert _installs(repo, ".venv") == [".[dev]", ".[dev]"]
