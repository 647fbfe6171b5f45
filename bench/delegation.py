"""What delegation saves: one recorded planned operation, priced two ways.

Run ``python -m bench.delegation``. It reads the usage ledger of a planned
operation (by default the recording in ``bench/data/planned-operation.json``;
``--operation ID`` reads one from the configured database) and prices every
call from the public table in ``crewchief/models/prices.toml``:

* **delegated**: calls of the ``orchestrator`` alias at the orchestrator's
  price, everything else (executors, meta-tool answers) at the delegate's;
* **all on the orchestrator**: the same tokens, every call at the
  orchestrator's price.

The second is a floor for the cost without delegation: an orchestrator that
read the files itself instead of getting the delegate's answers would use
more tokens, not fewer. ``--export FILE`` writes an operation's ledger as a
new recording.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any

from crewchief.errors import ConfigError
from crewchief.models.pricing import Price, price_table
from crewchief.models.types import Usage

RECORDING = Path(__file__).parent / "data" / "planned-operation.json"
TARGET = 60.0
ALTERNATIVES = ("gpt-5-mini", "gpt-5-nano", "gpt-4.1-mini", "gemini-2.5-flash")


def _load_recording(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise SystemExit(f"cannot read the recording {path}: {exc}") from None
    if not isinstance(data.get("ledger"), list) or not data["ledger"]:
        raise SystemExit(f"{path} has no 'ledger' rows")
    return data


async def _from_database(operation_id: str) -> dict[str, Any]:
    from crewchief.config import load_settings
    from crewchief.db.repository import get_operation
    from crewchief.db.writer import Writer

    settings = load_settings()
    store = Writer(settings.resolved_database_url)
    try:
        op = await get_operation(store, operation_id)
    finally:
        await store.close()
    if op.route != "plan":
        raise SystemExit(f"operation {operation_id} took the {op.route} route; pick a planned one")
    return {
        "operation": op.id,
        "request": op.request,
        "status": op.status,
        "tasks": len(op.tasks),
        "ledger": [
            {
                "node": m.node,
                "purpose": m.purpose,
                "alias": m.alias,
                "model": m.model,
                "calls": m.calls,
                "input": m.input,
                "output": m.output,
                "reasoning": m.reasoning,
            }
            for m in op.usage_by_model
        ],
    }


def price_operation(ledger: list[dict[str, Any]], orchestrator: Price, delegate: Price) -> dict:
    """Rows with both costs, and the totals."""
    rows = []
    for row in ledger:
        usage = Usage(row["input"], row["output"], row.get("reasoning", 0))
        on_orchestrator = row["alias"] == "orchestrator"
        rows.append(
            {
                **row,
                "delegated_usd": (orchestrator if on_orchestrator else delegate).cost(usage),
                "orchestrator_usd": orchestrator.cost(usage),
            }
        )
    delegated = sum(r["delegated_usd"] for r in rows)
    everything = sum(r["orchestrator_usd"] for r in rows)
    saving = 100.0 * (1 - delegated / everything) if everything else 0.0
    return {
        "rows": rows,
        "delegated_usd": delegated,
        "orchestrator_usd": everything,
        "saving": saving,
    }


def _print(data: dict[str, Any], priced: dict[str, Any], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    table = price_table()
    out = Console()
    out.print(
        f"[bold]Delegation cost[/] · operation {data.get('operation', '?')}: "
        f"{data.get('request', '')[:70]!r} ({data.get('tasks', '?')} tasks)"
    )
    out.print(
        f"prices as of {table.as_of} (crewchief/models/prices.toml): orchestrator "
        f"{args.orchestrator}, delegate {args.delegate}",
        style="dim",
    )
    grid = Table()
    for col in ("node (purpose)", "alias", "calls", "input", "output", "delegated $", "all-orch $"):
        grid.add_column(col, justify="left" if col in ("node (purpose)", "alias") else "right")
    for r in priced["rows"]:
        what = f"{r['node']} ({r['purpose']})" if r.get("purpose") else r["node"]
        grid.add_row(
            what,
            r["alias"],
            str(r.get("calls", "")),
            f"{r['input']:,}",
            f"{r['output']:,}",
            f"{r['delegated_usd']:.5f}",
            f"{r['orchestrator_usd']:.5f}",
        )
    grid.add_row(
        "total",
        "",
        "",
        "",
        "",
        f"{priced['delegated_usd']:.5f}",
        f"{priced['orchestrator_usd']:.5f}",
    )
    out.print(grid)
    met = "met" if priced["saving"] >= TARGET else "NOT met"
    out.print(f"saving with delegation: {priced['saving']:.1f}% (target ≥ {TARGET:.0f}%: {met})")
    others = Table("delegate model", "delegated $", "saving")
    orchestrator = table.require(args.orchestrator)
    for name in ALTERNATIVES:
        alt = price_operation(data["ledger"], orchestrator, table.require(name))
        others.add_row(name, f"{alt['delegated_usd']:.5f}", f"{alt['saving']:.1f}%")
    out.print(others)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.delegation", description=__doc__)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--operation", metavar="ID", help="a planned operation in the database")
    source.add_argument("--ledger", type=Path, default=RECORDING, help="a recording (JSON)")
    parser.add_argument("--orchestrator", default="gpt-5", help="price the orchestrator as this")
    parser.add_argument("--delegate", default="gpt-5-mini", help="price the delegate as this")
    parser.add_argument("--export", type=Path, metavar="FILE", help="write the ledger as JSON")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    data = (
        asyncio.run(_from_database(args.operation))
        if args.operation
        else _load_recording(args.ledger)
    )
    if args.export:
        args.export.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
    table = price_table()
    try:
        orchestrator, delegate = table.require(args.orchestrator), table.require(args.delegate)
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    priced = price_operation(data["ledger"], orchestrator, delegate)
    if args.json:
        print(
            json.dumps({**priced, "operation": data.get("operation"), "target": TARGET}, indent=2)
        )
    else:
        _print(data, priced, args)
    return 0 if priced["saving"] >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
