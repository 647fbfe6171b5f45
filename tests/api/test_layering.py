"""The API layer talks to crewchief through the facade and its own dependencies only.

What it may import is an import contract (tests/test_import_contracts.py); this checks
what an import rule cannot see: attribute access into the facade's services.
"""

from __future__ import annotations

import ast
from pathlib import Path

import crewchief.api

API_DIR = Path(crewchief.api.__file__).parent


def _modules() -> list[Path]:
    files = sorted(API_DIR.rglob("*.py"))
    assert len(files) >= 10
    return files


def test_routes_and_the_event_stream_do_not_reach_into_the_services() -> None:
    for path in _modules():
        tree = ast.parse(path.read_text())
        uses = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute) and node.attr in ("services", "_services")
        ]
        where = path.relative_to(API_DIR).as_posix()
        assert not uses, f"{where} touches .services at lines {uses}"
