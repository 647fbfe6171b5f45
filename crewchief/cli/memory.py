"""``crewchief memory forget``: delete what crewchief keeps of an owner beyond operations
(conversations, memories, cached answers and the profile)."""

from __future__ import annotations

import argparse
import json
from typing import Any


def add_parser(sub: Any) -> None:
    memory = sub.add_parser(
        "memory", help="an owner's conversations, memories, cached answers and profile"
    )
    memory_sub = memory.add_subparsers(dest="memory_command", metavar="ACTION", required=True)
    forget = memory_sub.add_parser(
        "forget",
        help="delete an owner's gateway conversations, conversation and operation memory,"
        " semantic cache entries (vectors included) and profile",
    )
    forget.add_argument("--owner", required=True, help="the API key owner (crewchief keys list)")
    forget.add_argument("--json", action="store_true")


def run(settings: Any, args: argparse.Namespace) -> int:
    import asyncio

    from crewchief.client.facade import Crewchief

    async def forget() -> dict[str, int]:
        async with Crewchief(settings) as chief:
            return await chief.forget(args.owner)

    deleted = asyncio.run(forget())
    if args.json:
        print(json.dumps({"owner": args.owner, "deleted": deleted}))
    else:
        parts = ", ".join(f"{n:,} {what.replace('_', ' ')}" for what, n in deleted.items())
        print(f"deleted for {args.owner}: {parts}")
    return 0
