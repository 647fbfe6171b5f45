"""``crewchief routes``: the gateway's routing table (which model answers each role)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from crewchief.gateway.roles import ROLES


def add_parser(sub: Any) -> None:
    routes = sub.add_parser("routes", help="the gateway's routing table: show, refresh, diff")
    routes_sub = routes.add_subparsers(dest="routes_command", metavar="ACTION", required=True)
    show = routes_sub.add_parser("show", help="the newest table (or how roles run without one)")
    show.add_argument("--role", choices=ROLES, help="only this role")
    show.add_argument("--json", action="store_true")
    refresh = routes_sub.add_parser(
        "refresh", help="rank the reachable models from benchmark figures and save a new table"
    )
    refresh.add_argument(
        "file", nargs="?", help="a benchmark file (default: the snapshot shipped with crewchief)"
    )
    routes_sub.add_parser("diff", help="what changed between the two newest tables, and why")


def run(settings: Any, args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_run(settings, args))


async def _run(settings: Any, args: argparse.Namespace) -> int:
    from crewchief.db.migrate import app_store
    from crewchief.db.routes import RouteTables

    async with app_store(settings.resolved_database_url) as store:
        return await _act(settings, args, RouteTables(store))


async def _act(settings: Any, args: argparse.Namespace, store: Any) -> int:
    from crewchief.gateway import routing

    if args.routes_command == "refresh":
        table = routing.refreshed(settings, args.file or settings.gateway.benchmarks_file)
        if not table.roles:
            print("no reachable model has benchmark figures: no table written")
            return 1
        number = await routing.save(store, table)
        print(f"saved routing table {number}")
        _print(table, None)
        return 0
    if args.routes_command == "diff":
        found = await routing.newest(store, 2)
        if len(found) < 2:
            print(
                f"{len(found)} table(s) saved: nothing to compare (run: crewchief routes refresh)"
            )
            return 0
        new, old = found
        lines = routing.diff(old, new)
        print(f"{old.created} -> {new.created}")
        print("\n".join(lines) if lines else "no change")
        return 0
    found = await routing.newest(store)
    if not found:
        from crewchief.gateway.roles import DEFAULT_ALIAS

        print("no routing table yet (crewchief routes refresh): each role runs on its alias")
        for role in [args.role] if args.role else ROLES:
            alias = DEFAULT_ALIAS[role]
            print(f"  {role:<15} {alias:<13} {settings.models[alias].model}")
        return 0
    table = found[0]
    if args.json:
        data = table.to_json()
        if args.role:
            data["roles"] = {args.role: data["roles"].get(args.role)}
        print(json.dumps(data, indent=2))
        return 0
    _print(table, args.role)
    return 0


def _print(table: Any, only: str | None) -> None:
    print(f"routing table of {table.created} from {table.source}")
    for role, route in table.roles.items():
        if only and role != only:
            continue
        fallbacks = ", ".join(route.fallbacks) or "none"
        profiles = ", ".join(f"{p}: {s}" for p, s in route.profiles.items()) or "none"
        print(f"  {role:<15} {route.primary}  (fallbacks: {fallbacks}; profiles: {profiles})")
        print(f"  {'':<15} {route.reason}")
