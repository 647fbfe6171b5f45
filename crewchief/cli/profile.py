"""``crewchief profile show|set|clear``: an owner's preferences, here or on a server.

Locally ``--owner`` names the owner (default: the owner of calls made without an API key,
such as library runs); with ``--server`` the API key decides whose profile it is.
Nothing heavy is imported at module level (``crewchief --help`` builds these parsers).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from crewchief.cli.ops import add_remote_options
from crewchief.cli.remote import fail as _fail

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
FIELDS = ("languages", "frameworks", "verbosity", "skill_level", "notes")


def add_parser(sub: Any) -> None:
    profile = sub.add_parser(
        "profile", help="an owner's preferences: stated, and learned from their history"
    )
    actions = profile.add_subparsers(dest="profile_command", metavar="ACTION", required=True)
    show = actions.add_parser(
        "show", help="stated and learned preferences, and the block models are given"
    )
    change = actions.add_parser(
        "set", help="change stated preferences: the options given (--replace: clear the rest)"
    )
    change.add_argument(
        "--language", "-l", action="append", dest="languages", metavar="NAME",
        help="a language you work in (repeat for more; replaces the stored list)",
    )  # fmt: skip
    change.add_argument(
        "--framework", "-f", action="append", dest="frameworks", metavar="NAME",
        help="a framework or library you use (repeat for more; replaces the stored list)",
    )  # fmt: skip
    change.add_argument("--verbosity", metavar="LEVEL", help="terse, normal or detailed")
    change.add_argument(
        "--skill-level",
        dest="skill_level",
        metavar="LEVEL",
        help="beginner, intermediate or expert",
    )
    change.add_argument("--notes", help="anything else models should know (500 characters)")
    change.add_argument(
        "--unset", action="append", choices=FIELDS, default=[], metavar="FIELD",
        help=f"clear a stated field ({', '.join(FIELDS)}); repeat for more",
    )  # fmt: skip
    change.add_argument(
        "--replace", action="store_true", help="replace every stated preference: clear the rest"
    )
    clear = actions.add_parser("clear", help="delete the profile, stated and learned")
    for parser in (show, change, clear):
        parser.add_argument(
            "--owner", help="whose profile (local only; default: calls without an API key)"
        )
        parser.add_argument("--json", action="store_true")
        add_remote_options(parser)


def _fields(args: argparse.Namespace) -> dict[str, Any]:
    """The stated fields the options give (``None`` clears one)."""
    fields: dict[str, Any] = {name: None for name in args.unset}
    for name in FIELDS:
        value = getattr(args, name, None)
        if value is not None:
            fields[name] = value
    return fields


def run(settings: Any, args: argparse.Namespace) -> int:
    """The local database's profiles, or with ``--server`` (``CREWCHIEF_SERVER``) the
    service's."""
    import asyncio

    from crewchief.cli.ops import server_for
    from crewchief.client.facade import Crewchief

    if (server := server_for(args)) is not None:
        return run_remote(args, server)

    async def work() -> dict[str, Any]:
        async with Crewchief(settings) as chief:
            owner = args.owner or None
            if args.profile_command == "clear":
                return {"owner": owner, "deleted": await chief.delete_profile(owner)}
            if args.profile_command == "set":
                changed = await chief.set_profile(owner, _fields(args), merge=not args.replace)
                return _public(changed)
            return _public(await chief.profile(owner))

    return _print(args, asyncio.run(work()))


def _public(profile: Any) -> dict[str, Any]:
    about = profile.about()
    return {**profile.model_dump(mode="json"), "prompt": about.text if about else None}


def run_remote(args: argparse.Namespace, server: str) -> int:
    """The profile of the API key's owner on a crewchief service."""
    from crewchief.cli.remote import call_server

    if args.owner:
        return _fail("--owner is for the local database: on a server the API key decides")

    async def call(remote: Any) -> dict[str, Any]:
        if args.profile_command == "clear":
            return await remote.delete_profile()
        if args.profile_command == "set":
            return await remote.set_profile(_fields(args), merge=not args.replace)
        return await remote.profile()

    return call_server(args, server, call, lambda data: _print(args, data))


def _print(args: argparse.Namespace, data: dict[str, Any]) -> int:
    if args.json:
        print(json.dumps(data))
        return EXIT_OK
    who = data.get("owner") or "(no API key)"
    if args.profile_command == "clear":
        print(f"deleted the profile of {who}" if data["deleted"] else f"{who} had no profile")
        return EXIT_OK
    print(f"profile of {who}")
    stated = data.get("stated") or {}
    said = [
        f"{name.replace('_', ' ')}: {', '.join(v) if isinstance(v, list) else v}"
        for name in FIELDS
        if (v := stated.get(name))
    ]
    print("stated: " + ("; ".join(said) if said else "nothing"))
    learned = data.get("learned") or {}
    found = [
        f"{name}: "
        + ", ".join(
            f"{i['name']} ({i['evidence']}: "
            + ", ".join(f"{n} {kind}" for kind, n in i["sources"].items())
            + ")"
            for i in items
        )
        for name, items in learned.items()
        if items
    ]
    print("learned: " + ("; ".join(found) if found else "nothing yet"))
    if data.get("prompt"):
        print("\nwhat models are told:\n" + data["prompt"])
    return EXIT_OK
