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

An operation read from the database also has what crewchief itself charged for
each call (``cost_usd`` in the ledger, priced live as the calls were made): its
sum is shown next to the two table prices, with the saving it makes against
"all on the orchestrator". ``--live`` makes such an operation here: it runs a
planned operation in a temporary home on scripted fake models priced in
``[prices]`` as the orchestrator and the delegate, whose replies carry the
recording's tokens (the orchestrator's on the plan and the synthesis, the
delegate's split across the tasks), so the real model registry prices every
call and the ledger records it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crewchief.errors import ConfigError
from crewchief.models.pricing import Price, price_table
from crewchief.models.types import Usage

if TYPE_CHECKING:
    from crewchief.config import Settings

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


async def _from_database(operation_id: str, settings: Settings | None = None) -> dict[str, Any]:
    from crewchief.config import load_settings
    from crewchief.db.repository import get_operation
    from crewchief.db.writer import Writer

    settings = settings or load_settings()
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
                "cached_input": m.cached_input,
                "output": m.output,
                "reasoning": m.reasoning,
                "cost_usd": m.cost_usd,
                "unpriced_calls": m.unpriced_calls,
            }
            for m in op.usage_by_model
        ],
    }


def _split(total: dict[str, int], parts: int) -> list[dict[str, int]]:
    """``total`` tokens shared by ``parts`` calls (the first ones take the remainder)."""
    return [{k: v // parts + (i < v % parts) for k, v in total.items()} for i in range(parts)]


def _fake_usage(rows: list[dict[str, Any]]) -> dict[str, int]:
    """The rows' tokens summed, as a fake reply's ``usage`` (output without reasoning)."""
    usage = Usage()
    for r in rows:
        usage += Usage(r["input"], r["output"], r.get("reasoning", 0), r.get("cached_input", 0))
    return {
        "input": usage.input,
        "cached_input": usage.cached_input,
        "output": usage.output - usage.reasoning,
        "reasoning": usage.reasoning,
    }


def replay_scripts(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fake-model scripts (orchestrator, delegate) that replay a recording's tokens.

    The orchestrator plans (with the tokens of its rows other than the synthesis) and
    synthesizes; the delegate's tokens (executors and meta-tool answers) are split across
    the tasks, one call each. Each alias spends exactly its recorded tokens.
    """
    ledger = data["ledger"]
    orchestrator = [r for r in ledger if r["alias"] == "orchestrator"]
    tasks = int(data.get("tasks") or 1)
    plan = {
        "summary": "the recorded plan",
        "tasks": [
            {"id": i, "description": f"Part {i} of the request", "active_form": f"Doing part {i}",
             "depends_on": []}
            for i in range(1, tasks + 1)
        ],
    }  # fmt: skip
    planning = _fake_usage([r for r in orchestrator if r["node"] != "synthesize"])
    synthesis = _fake_usage([r for r in orchestrator if r["node"] == "synthesize"])
    work = _fake_usage([r for r in ledger if r["alias"] != "orchestrator"])
    return (
        {"fallback": "error", "rules": [
            {"node": "plan", "reply": {"plan": plan, "usage": planning}},
            {"node": "synthesize", "reply": {"text": "All parts done.", "usage": synthesis}},
        ]},
        {"fallback": "error", "rules": [
            {"node": "execute_task",
             "replies": [{"text": f"Part {i + 1} done.", "usage": u}
                         for i, u in enumerate(_split(work, tasks))]},
        ]},
    )  # fmt: skip


async def run_live(data: dict[str, Any], orchestrator: str, delegate: str) -> dict[str, Any]:
    """Run the recording's request as a planned operation on fake models that replay its
    tokens, priced as ``orchestrator`` and ``delegate``; its ledger, read back."""
    from crewchief.client.facade import Crewchief
    from crewchief.config import load_settings

    table = price_table()
    with tempfile.TemporaryDirectory(prefix="crewchief-bench-delegation-") as tmp:
        home, specs, prices = Path(tmp), {}, {}
        (home / "none.toml").write_text("")  # so a ./crewchief.toml cannot change the set-up
        for alias, script, name in zip(
            ("orchestrator", "delegate"),
            replay_scripts(data),
            (orchestrator, delegate),
            strict=True,
        ):
            (home / f"{alias}.json").write_text(json.dumps(script), "utf-8")
            specs[alias] = f"fake:{home / alias}.json"
            price = table.require(name)
            prices[specs[alias]] = {k: v for k, v in asdict(price).items() if v is not None}
        settings = load_settings(
            config_file=home / "none.toml",
            env={"CREWCHIEF_HOME": str(home / "home"), "CREWCHIEF_MODEL": "fake:default"},
            prices=prices,
            knowledge={"memory": False, "profiles": False},
        )
        models = {
            a: c.model_copy(update={"model": specs.get(a, c.model), "fallbacks": []})
            for a, c in settings.models.items()
        }
        settings = settings.model_copy(update={"models": models})
        async with Crewchief(settings) as cc:
            done = await cc.run(data.get("request") or "the recorded request", route="plan")
        if done.status != "completed":
            raise SystemExit(f"the live operation {done.status}: {done.error}")
        return {**await _from_database(done.id, settings), "live": True}


def price_operation(ledger: list[dict[str, Any]], orchestrator: Price, delegate: Price) -> dict:
    """Rows with both costs, and the totals."""
    rows = []
    for row in ledger:
        usage = Usage(
            row["input"], row["output"], row.get("reasoning", 0), row.get("cached_input", 0)
        )
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
    out = {
        "rows": rows,
        "delegated_usd": delegated,
        "orchestrator_usd": everything,
        "saving": saving,
    }
    if all("cost_usd" in r for r in ledger):  # read from a ledger: what crewchief charged
        out["ledger_usd"] = sum(r["cost_usd"] for r in ledger)
        out["unpriced_calls"] = sum(r.get("unpriced_calls", 0) for r in ledger)
        # A call of an unpriced model (local, fake) costs 0 there: no saving can be read.
        comparable = everything and not out["unpriced_calls"]
        out["ledger_saving"] = 100.0 * (1 - out["ledger_usd"] / everything) if comparable else None
    return out


def _print(data: dict[str, Any], priced: dict[str, Any], args: argparse.Namespace) -> None:
    from rich.console import Console
    from rich.table import Table

    table = price_table()
    out = Console()
    out.width = max(out.width, 110)  # pipes default to 80 columns, which squeezes the table
    out.print(
        f"[bold]Delegation cost[/] · operation {data.get('operation', '?')}: "
        f"{data.get('request', '')[:70]!r} ({data.get('tasks', '?')} tasks)"
    )
    out.print(
        f"prices as of {table.as_of} (crewchief/models/prices.toml): orchestrator "
        f"{args.orchestrator}, delegate {args.delegate}",
        style="dim",
    )
    if data.get("live"):
        out.print(
            "run live in a temporary home: the recording's tokens replayed through fake models"
            f" priced as {args.orchestrator} (orchestrator) and {args.delegate} (delegate)",
            style="dim",
        )
    ledger = "ledger_usd" in priced  # what crewchief charged, call by call
    grid = Table()
    columns = ["node (purpose)", "alias", "calls", "input", "output", "delegated $", "all-orch $"]
    for col in columns + (["ledger $"] if ledger else []):
        grid.add_column(col, justify="left" if col in ("node (purpose)", "alias") else "right")
    for r in priced["rows"]:
        what = f"{r['node']} ({r['purpose']})" if r.get("purpose") else r["node"]
        cells = [what, r["alias"], str(r.get("calls", "")), f"{r['input']:,}", f"{r['output']:,}"]
        cells += [f"{r['delegated_usd']:.5f}", f"{r['orchestrator_usd']:.5f}"]
        grid.add_row(*cells, *([f"{r['cost_usd']:.5f}"] if ledger else []))
    totals = [f"{priced['delegated_usd']:.5f}", f"{priced['orchestrator_usd']:.5f}"]
    grid.add_row(
        "total", "", "", "", "", *totals, *([f"{priced['ledger_usd']:.5f}"] if ledger else [])
    )
    out.print(grid)
    met = "met" if priced["saving"] >= TARGET else "NOT met"
    out.print(f"saving with delegation: {priced['saving']:.1f}% (target ≥ {TARGET:.0f}%: {met})")
    if ledger:
        saved = priced["ledger_saving"]
        out.print(
            f"the ledger's own cost (cost_usd summed): ${priced['ledger_usd']:.5f}, "
            + (
                f"a saving of {saved:.1f}% against all on the orchestrator"
                if saved is not None
                else f"no saving to read: {priced['unpriced_calls']} calls were unpriced (0)"
            )
        )
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
    parser.add_argument(
        "--live", action="store_true", help="run the recording as an operation here, priced live"
    )
    parser.add_argument("--orchestrator", default="gpt-5", help="price the orchestrator as this")
    parser.add_argument("--delegate", default="gpt-5-mini", help="price the delegate as this")
    parser.add_argument("--export", type=Path, metavar="FILE", help="write the ledger as JSON")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    if args.live and args.operation:
        parser.error("--live runs a recording (--ledger), not an --operation")
    table = price_table()
    try:
        orchestrator, delegate = table.require(args.orchestrator), table.require(args.delegate)
    except ConfigError as exc:
        raise SystemExit(str(exc)) from None
    if args.operation:
        data = asyncio.run(_from_database(args.operation))
    else:
        data = _load_recording(args.ledger)
        if args.live:
            data = asyncio.run(run_live(data, args.orchestrator, args.delegate))
    if args.export:
        args.export.write_text(json.dumps(data, indent=2) + "\n", "utf-8")
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
