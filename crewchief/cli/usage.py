"""``crewchief usage``: model calls, tokens and cost from the usage ledger, grouped, here or
on a server.

Locally every owner's calls are counted unless ``--owner`` names one; with ``--server`` the
API key decides (a key sees its own owner's usage). Nothing heavy is imported at module
level (``crewchief --help`` builds these parsers).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from crewchief.cli.ops import add_remote_options, money, server_for

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
GROUPS = "model, role, key, owner, day, operation, task, alias, node, paid_by"
_COUNTS = (
    ("calls", "calls"),
    ("input", "input_tokens"),
    ("cached", "cached_input_tokens"),
    ("output", "output_tokens"),
    ("reasoning", "reasoning_tokens"),
)


def add_parser(sub: Any) -> None:
    usage = sub.add_parser(
        "usage", help="model calls, tokens and cost from the usage ledger, grouped"
    )
    usage.add_argument(
        "--by", action="append", metavar="GROUP",
        help=f"group by {GROUPS} (repeat, or separate with commas; default: model)",
    )  # fmt: skip
    usage.add_argument(
        "--since", metavar="WHEN",
        help="calls from this date or time (2026-03-01, 2026-03-01T12:00Z) or span back (7d, 12h)",
    )  # fmt: skip
    usage.add_argument("--until", metavar="WHEN", help="calls before this time; a date includes it")
    usage.add_argument("--model", help="only calls of this model spec (openai:gpt-5)")
    usage.add_argument("--role", help="only calls for this gateway role")
    usage.add_argument("--operation", metavar="ID", help="only this operation's calls")
    usage.add_argument("--key", metavar="ID", help="only calls made with this API key id")
    usage.add_argument("--owner", help="only this owner's calls (default: every owner's)")
    usage.add_argument("--json", action="store_true", help="print the report as JSON")
    add_remote_options(usage)


def _query(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "group_by": args.by or ["model"],
        "since": args.since,
        "until": args.until,
        "model": args.model,
        "role": args.role,
        "operation_id": args.operation,
        "key": args.key,
    }


def run(settings: Any, args: argparse.Namespace) -> int:
    """The local database's ledger, or with ``--server`` (``CREWCHIEF_SERVER``) the
    service's."""
    import asyncio

    from crewchief.client.facade import Crewchief
    from crewchief.db.repository import ANY_OWNER

    if (server := server_for(args)) is not None:
        return run_remote(args, server)

    async def work() -> Any:
        async with Crewchief(settings) as chief:
            owner = ANY_OWNER if args.owner is None else args.owner
            return await chief.usage(owner=owner, **_query(args))

    return _print(args, asyncio.run(work()))


def run_remote(args: argparse.Namespace, server: str) -> int:
    """The usage the API key may see on a crewchief service."""
    from crewchief.cli.remote import call_server

    return call_server(
        args, server, lambda remote: remote.usage(owner=args.owner, **_query(args)),
        lambda report: _print(args, report),
    )  # fmt: skip


def _print(args: argparse.Namespace, report: Any) -> int:
    from rich.console import Console

    if args.json:
        print(json.dumps(report.model_dump(mode="json")))
        return EXIT_OK
    out = Console(soft_wrap=True)
    if not out.is_terminal:  # a pipe or a file: whole ids and model names, never cut
        out.width = 240
    out.print(_table(report))
    period = " · ".join(
        f"{name} {when:%Y-%m-%d %H:%M} UTC"
        for name, when in (("from", report.since), ("before", report.until))
        if when is not None
    )
    notes = [period or "all time", f"prices as of {report.prices_as_of}"]
    if report.totals.unpriced_calls:
        notes.append(
            f"{report.totals.unpriced_calls} calls of unpriced models (local, fake or unknown)"
            " counted as $0"
        )
    out.print(" · ".join(notes), style="dim", highlight=False)
    return EXIT_OK


def _table(report: Any) -> Any:
    from rich.table import Table

    names = list(
        dict.fromkeys(
            n for g in report.group_by for n in (("operation", g) if g == "task" else (g,))
        )
    )
    table = Table(box=None, show_footer=True)
    for i, name in enumerate(names or [""]):
        table.add_column(name, footer="total" if i == 0 else "", no_wrap=True)
    totals = report.totals
    for label, field in _COUNTS:
        table.add_column(label, justify="right", footer=f"{getattr(totals, field):,}")
    table.add_column("cost", justify="right", footer=money(totals.cost_usd))
    table.add_column("unpriced", justify="right", footer=f"{totals.unpriced_calls:,}")
    for row in report.rows:
        table.add_row(
            *(_cell(row.group.get(name)) for name in names or [""]),
            *(f"{getattr(row, field):,}" for _, field in _COUNTS),
            money(row.cost_usd),
            f"{row.unpriced_calls:,}",
        )
    return table


def _cell(value: Any) -> str:
    return "" if value is None else str(value)
