"""Token savers: how many tokens summarize_file, extract_symbols and count_lines save.

Run from the repository root::

    python -m bench.tools [--root DIR ...] [--json]

For every text file of a real codebase that ``read_file`` can read, the
benchmark counts the tokens (tiktoken ``o200k_base``) of exactly what
``run_file_tool(ws, "read_file", ...)`` returns, and of exactly what each token
saver returns for the same files: ``summarize_file`` and ``extract_symbols`` one
file per call (``extract_symbols`` only on files of a language it parses),
``count_lines`` in calls of as many files as it shows rows for, so every file
gets its own row. The default roots are the installed ``sqlalchemy`` package
and, when npm is installed, npm's JavaScript sources. This is a report, not a
test: it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from crewchief.models.tokens import count_tokens
from crewchief.tools import languages
from crewchief.tools._walk import walk
from crewchief.tools.files import run_file_tool
from crewchief.tools.workspace import Workspace

# Least saving (percent of the read_file tokens) each tool must reach.
TARGETS = {"summarize_file": 85.0, "extract_symbols": 75.0, "count_lines": 95.0}


@dataclass(slots=True)
class Row:
    """One tool over one root."""

    root: str
    tool: str
    files: int
    read_tokens: int
    tool_tokens: int
    saving_pct: float
    per_file_mean_pct: float | None
    target_pct: float
    met: bool
    seconds: float


def default_roots() -> list[Path]:
    """The installed sqlalchemy package, and npm's ``lib`` folder when npm is installed."""
    roots = []
    spec = importlib.util.find_spec("sqlalchemy")
    if spec and spec.submodule_search_locations:
        roots.append(Path(next(iter(spec.submodule_search_locations))))
    npm = shutil.which("npm")
    if npm:
        lib = Path(npm).resolve().parents[1] / "lib"
        if lib.is_dir():
            roots.append(lib)
    return roots


def measure(root: Path) -> list[Row]:
    """Rows for the three token savers over every readable text file under ``root``."""
    ws = Workspace.open(root)
    reads: dict[str, int] = {}
    for entry in walk(ws.root):
        outcome = run_file_tool(ws, "read_file", {"path": entry.rel})
        if outcome.ok:
            reads[entry.rel] = count_tokens(outcome.output)
    files = sorted(reads)
    parsed = [f for f in files if languages.detect(f).parser]
    rows = [
        _per_file(ws, "summarize_file", files, reads, lambda f: {"path": f}),
        _per_file(ws, "extract_symbols", parsed, reads, lambda f: {"path": f}),
    ]
    batches = [files[i : i + ws.max_rows] for i in range(0, len(files), ws.max_rows)]
    rows.append(_batched(ws, batches, reads))
    return rows


def _per_file(
    ws: Workspace,
    tool: str,
    files: list[str],
    reads: dict[str, int],
    args: Callable[[str], dict[str, str]],
) -> Row:
    spent, tokens, savings = 0.0, 0, []
    for name in files:
        start = time.perf_counter()
        outcome = run_file_tool(ws, tool, args(name))
        spent += time.perf_counter() - start
        if not outcome.ok:
            raise SystemExit(f"{tool} failed on {name}: {outcome.output}")
        used = count_tokens(outcome.output)
        tokens += used
        if reads[name]:
            savings.append(100.0 * (1 - used / reads[name]))
    mean = statistics.fmean(savings) if savings else None
    return _row(ws, tool, len(files), sum(reads[f] for f in files), tokens, spent, mean)


def _batched(ws: Workspace, batches: list[list[str]], reads: dict[str, int]) -> Row:
    spent, tokens = 0.0, 0
    for batch in batches:
        start = time.perf_counter()
        outcome = run_file_tool(ws, "count_lines", {"paths": batch})
        spent += time.perf_counter() - start
        if not outcome.ok:
            raise SystemExit(f"count_lines failed: {outcome.output}")
        tokens += count_tokens(outcome.output)
    files = [f for batch in batches for f in batch]
    return _row(ws, "count_lines", len(files), sum(reads[f] for f in files), tokens, spent, None)


def _row(
    ws: Workspace, tool: str, files: int, read: int, used: int, spent: float, mean: float | None
) -> Row:
    saving = 100.0 * (1 - used / read) if read else 0.0
    target = TARGETS[tool]
    # The target is on the codebase's tokens (the saving of a whole exploration); the
    # per-file mean, where small files weigh as much as big ones, is shown beside it.
    met = saving >= target
    return Row(str(ws.root), tool, files, read, used, saving, mean, target, met, spent)


def print_table(rows: list[Row]) -> None:
    """Print the rows as a rich table, then the overall line."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title="Token savers vs read_file (tiktoken o200k_base)")
    columns = ("root", "tool", "files", "read_file tokens", "tool tokens", "saving")
    columns += ("per-file mean", "target", "met", "time")
    for column in columns:
        table.add_column(
            column, justify="left" if column in ("root", "tool") else "right", no_wrap=True
        )
    for row in rows:
        mean = f"{row.per_file_mean_pct:.1f}%" if row.per_file_mean_pct is not None else ""
        table.add_row(
            _short(row.root),
            row.tool,
            str(row.files),
            f"{row.read_tokens:,}",
            f"{row.tool_tokens:,}",
            f"{row.saving_pct:.1f}%",
            mean,
            f"≥ {row.target_pct:g}%",
            "yes" if row.met else "NO",
            f"{row.seconds:.2f} s",
        )
    console = Console()
    console.width = max(console.width, 140)  # pipes default to 80 columns, which wraps the rows
    console.print(table)
    for root in dict.fromkeys(row.root for row in rows):
        console.print(f"{_short(root)}: {root}", markup=False)
    console.print(f"all targets met: {'yes' if all(r.met for r in rows) else 'NO'}")


def _short(root: str) -> str:
    """The last two folders of a root, e.g. ``site-packages/sqlalchemy``."""
    return "/".join(Path(root).parts[-2:])


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, and print the table (or JSON). Always returns 0."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.tools", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--root",
        action="append",
        type=Path,
        help="a codebase to measure (repeatable; default: sqlalchemy and npm's sources)",
    )
    parser.add_argument("--json", action="store_true", help="print the rows as JSON only")
    args = parser.parse_args(argv)
    roots = args.root or default_roots()
    if not roots:
        parser.error("no default codebase found; pass --root DIR")
    rows = [row for root in roots for row in measure(root)]
    if args.json:
        print(json.dumps([asdict(r) for r in rows], indent=2))
    else:
        print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
