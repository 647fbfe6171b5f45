"""``crewchief budgets``: the operator's view of budgets in the local database: show a key's
or owner's plan, limits and spend; set or clear limits (set here, an owner cannot change
them through the API).

Owners set limits of their own through ``PUT /v1/budgets``. Nothing heavy is imported at
module level (``crewchief --help`` builds these parsers).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2


def add_parser(sub: Any) -> None:
    budgets = sub.add_parser("budgets", help="spending limits of keys and owners, and their spend")
    actions = budgets.add_subparsers(dest="budgets_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="plan, limits, spend, what is held and the reset")
    _who(show)
    show.add_argument("--json", action="store_true")
    put = actions.add_parser("set", help="set the limits of a key or an owner (the operator's)")
    _who(put)
    put.add_argument("--daily-usd", type=float, metavar="USD", help="limit per UTC day")
    put.add_argument("--monthly-usd", type=float, metavar="USD", help="limit per UTC month")
    put.add_argument("--soft", action="store_true", help="warn only; never refuse a call")
    put.add_argument(
        "--downgrade", action="store_true",
        help="once exhausted, answer with budgets.downgrade_model instead of refusing",
    )  # fmt: skip
    clear = actions.add_parser("clear", help="remove the limits set for a key or an owner")
    _who(clear)


def _who(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--key", metavar="ID", help="an API key id (see: crewchief keys list)")
    group.add_argument(
        "--owner", metavar="OWNER", help="an owner ('-': calls made without an API key)"
    )


def _subject(args: argparse.Namespace) -> tuple[str, str]:
    if args.key is not None:
        return "key", args.key
    return "owner", "" if args.owner == "-" else args.owner


def run(settings: Any, args: argparse.Namespace) -> int:
    import asyncio

    from crewchief.client.facade import Crewchief

    scope, subject = _subject(args)

    async def work() -> int:
        async with Crewchief(settings) as chief:
            if args.budgets_command == "set":
                if args.daily_usd is None and args.monthly_usd is None:
                    print("error: give --daily-usd, --monthly-usd or both", file=sys.stderr)
                    return EXIT_USAGE
                row = await chief.set_budget(
                    scope, subject, daily_usd=args.daily_usd, monthly_usd=args.monthly_usd,
                    enforcement="soft" if args.soft else "hard",
                    on_exceed="downgrade" if args.downgrade else "refuse",
                )  # fmt: skip
                print(_limits_line(row))
                return EXIT_OK
            if args.budgets_command == "clear":
                removed = await chief.clear_budget(scope, subject)
                print(
                    f"{'removed' if removed else 'there were no'} limits of {scope} {subject or '-'}"
                )
                return EXIT_OK
            owner, key = await _payer(chief, scope, subject)
            report = await chief.budgets(owner=owner, key=key)
            _print(report, args.json)
            return EXIT_OK

    return asyncio.run(work())


async def _payer(chief: Any, scope: str, subject: str) -> tuple[str | None, str | None]:
    if scope == "owner":
        return subject or None, None
    info = await chief.key_info(subject)
    if info is None:
        from crewchief.db.keys import ApiKeyError

        raise ApiKeyError(f"no API key has the id {subject!r} (see `crewchief keys list`)")
    return info.owner, subject


def _limits_line(row: dict[str, Any]) -> str:
    parts = [
        f"{p} ${row[f'{p}_usd']:.2f}" for p in ("daily", "monthly") if row[f"{p}_usd"] is not None
    ]
    return (
        f"{row['scope']} {row['subject'] or '-'}: {', '.join(parts)}"
        f" ({row['enforcement']}, {row['on_exceed']} when exhausted; set by {row['set_by']})"
    )


def _print(report: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(report))
        return
    from rich.console import Console
    from rich.table import Table

    out = Console(soft_wrap=True)
    if not out.is_terminal:
        out.width = 240
    plan = report["plan"] or "none"
    out.print(f"owner {report['owner'] or '-'} · key {report['key'] or '-'} · plan {plan}")
    table = Table(box=None)
    for name in (
        "limit of",
        "period",
        "source",
        "kind",
        "limit",
        "spent",
        "held",
        "left",
        "resets",
    ):
        table.add_column(
            name, justify="right" if name in ("limit", "spent", "held", "left") else "left"
        )
    for c in report["counters"]:
        unit = "usd" if c["unit"] == "usd" else "count"
        fmt = (lambda v: f"${v:,.4f}") if unit == "usd" else (lambda v: f"{v:,.0f}")
        kind = c["unit"] if c["unit"] != "usd" else f"{c['enforcement']}, {c['on_exceed']}"
        table.add_row(
            f"{c['scope']} {c['subject'] or '-'}", c["period"], c["source"], kind,
            fmt(c[f"limit_{unit}"]), fmt(c[f"spent_{unit}"]), fmt(c[f"held_{unit}"]),
            fmt(c[f"remaining_{unit}"]), c["resets_at"],
        )  # fmt: skip
    out.print(table if report["counters"] else "no limits")
