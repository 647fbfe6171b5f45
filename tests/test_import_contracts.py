"""The package's import rules (pyproject's [tool.importlinter], docs/architecture.md) hold."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# A hang guard, not a speed target: the check takes about a second.
HANG_GUARD_S = 120


def test_import_contracts_are_kept() -> None:
    lint = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run(
        [str(lint), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=HANG_GUARD_S,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    # Every contract ran (a renamed table would otherwise check nothing).
    assert proc.stdout.count(" KEPT") == 3, proc.stdout
