"""``crewchief search``: hybrid code search from the command line, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.test_cli import crewchief


def _workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "billing").mkdir(parents=True)
    (root / "billing" / "invoice.py").write_text(
        "class Invoice:\n"
        '    """A bill sent to a customer."""\n\n'
        "    def overdue_days(self, today):\n"
        '        """Days past the due date, 0 when paid in time."""\n'
        "        return max(0, (today - self.due).days)\n"
    )
    (root / "notes.md").write_text("# Notes\n\nInvoices are sent monthly.\n")
    return root


def test_search_prints_hits_with_why_and_json_on_request(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    home = tmp_path / "home"
    done = crewchief(home, "search", "how many days late is a bill", "-w", str(workspace))
    assert done.returncode == 0, done.stderr
    first, *rest = done.stdout.splitlines()
    assert first.startswith(f"hybrid search of {workspace}: 2 files, 2 chunks; refreshed")
    assert rest[0].startswith("1. billing/invoice.py:1-6 Invoice  (keywords #1: ")
    assert "class Invoice:" in done.stdout

    (workspace / "billing" / "invoice.py").unlink()
    as_json = crewchief(home, "search", "invoice", "-w", str(workspace), "--json", "-k", "1")
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout)
    assert result["index"]["refresh"]["removed"] == 1  # the deleted file is gone from the index
    assert [h["path"] for h in result["hits"]] == ["notes.md"]


def test_bad_arguments_exit_2_with_the_reason(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path)
    home = tmp_path / "home"
    empty = crewchief(home, "search", " ", "-w", str(workspace))
    assert empty.returncode == 2 and "query: expected a non-empty string" in empty.stderr
    missing = crewchief(home, "search", "x", "-w", str(tmp_path / "nowhere"))
    assert missing.returncode == 2 and "workspace: expected an existing directory" in missing.stderr
    too_many = crewchief(home, "search", "x", "-w", str(workspace), "-k", "99")
    assert too_many.returncode == 2 and "k: expected an integer from 1 to 50" in too_many.stderr
