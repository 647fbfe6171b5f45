"""The dashboard ships inside the wheel: an installed crewchief serves the page with no
Node.js and no files from the source tree."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STATIC = ROOT / "crewchief" / "dashboard" / "static"


def _shipped() -> set[str]:
    return {
        p.relative_to(ROOT).as_posix()
        for p in STATIC.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    }


def test_every_file_the_page_loads_is_in_the_package() -> None:
    """index.html and each module import name files that exist: a renamed module would
    otherwise fail only in the browser."""
    index = (STATIC / "index.html").read_text()
    for ref in re.findall(r'(?:src|href)="/dashboard/([^"]+)"', index):
        assert (STATIC / ref).is_file(), f"index.html loads /dashboard/{ref}, which is missing"
    for module in (STATIC / "js").glob("*.js"):
        for ref in re.findall(r'from "\./([^"]+)"', module.read_text()):
            assert (module.parent / ref).is_file(), f"{module.name} imports ./{ref}, missing"


@pytest.mark.slow
def test_the_wheel_carries_the_dashboard(tmp_path: Path) -> None:
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        check=True,
        timeout=600,
    )
    (wheel,) = tmp_path.glob("crewchief-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        missing = _shipped() - names
        assert not missing, f"not in the wheel: {sorted(missing)}"
        assert (
            zf.read("crewchief/dashboard/static/index.html") == (STATIC / "index.html").read_bytes()
        )
