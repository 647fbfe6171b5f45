"""Running a benchmark harness the way a user does, for the harnesses' own tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# A hang guard, not a speed target: each tiny run normally takes well under a minute.
HANG_GUARD_S = 240


def run_harness(
    module: str, *args: str, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], str]:
    """``python -m MODULE ARGS --json`` from the repository root; its JSON report and what
    it wrote on stderr (progress, the PIDs it started).

    The harness must exit 0 and print the JSON object alone on stdout.
    """
    proc = run_module(module, *args, "--json", env=env)
    return json.loads(proc.stdout), proc.stderr


def run_module(
    module: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``python -m MODULE ARGS`` from the repository root, which must exit 0; its output."""
    proc = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie, dead but not yet reaped, does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
