"""``crewchief credentials set|list|delete|rotate|keygen``: owners' own provider keys.

``set`` reads the key from standard input (``printf %s "$KEY" | crewchief credentials set
openai --owner alice``) or, on a terminal, from a prompt that does not echo: never from the
command line, which every user of the machine can read in ``ps``. Locally ``--owner`` names
the owner (default: the owner of calls made without an API key, such as library runs); with
``--server`` the API key decides whose credentials they are. ``rotate`` and ``keygen`` are
the operator's, on the local database. Nothing heavy is imported at module level
(``crewchief --help`` builds these parsers).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from crewchief.cli.ops import add_remote_options
from crewchief.cli.remote import fail as _fail

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parser(sub: Any) -> None:
    creds = sub.add_parser(
        "credentials", help="owners' own provider API keys (bring your own key), encrypted"
    )
    actions = creds.add_subparsers(dest="credentials_command", metavar="ACTION", required=True)
    put = actions.add_parser(
        "set", help="store an owner's API key for a provider (read from stdin or a prompt)"
    )
    put.add_argument("provider", help="openai, google, or a [providers.NAME] of type openai")
    put.add_argument(
        "--base-url", metavar="URL",
        help="the owner's own OpenAI-compatible server (openai-type providers only)",
    )  # fmt: skip
    listing = actions.add_parser("list", help="an owner's credentials: never the keys")
    drop = actions.add_parser("delete", help="delete an owner's credential for a provider")
    drop.add_argument("provider")
    for parser in (put, listing, drop):
        parser.add_argument(
            "--owner", help="whose credentials (local only; default: calls without an API key)"
        )
        parser.add_argument("--json", action="store_true")
        add_remote_options(parser)
    rotate = actions.add_parser(
        "rotate", help="encrypt every stored credential again with the first of secret_keys"
    )
    rotate.add_argument("--json", action="store_true")
    actions.add_parser("keygen", help="print a new key for secret_keys (CREWCHIEF_SECRET_KEYS)")


def keygen() -> int:
    """Print a new Fernet key (needs no settings: a broken key must not stop making one)."""
    from crewchief.db.credentials import new_key

    print(new_key())
    print(
        "add it to CREWCHIEF_SECRET_KEYS (comma-separated; the first encrypts) on every API"
        " server and worker, then run `crewchief credentials rotate` if keys were set before",
        file=sys.stderr,
    )
    return EXIT_OK


def read_secret(provider: str) -> str:
    """The key from standard input, or from a prompt that does not echo on a terminal."""
    if sys.stdin is not None and sys.stdin.isatty():
        import getpass

        return getpass.getpass(f"API key for {provider} (not shown): ").strip()
    return sys.stdin.read().strip() if sys.stdin is not None else ""


def run(settings: Any, args: argparse.Namespace) -> int:
    """The local database's credentials, or with ``--server`` (``CREWCHIEF_SERVER``) the
    service's."""
    import asyncio

    from crewchief.cli.ops import server_for

    command = args.credentials_command
    if command == "keygen":
        return keygen()
    if command != "rotate" and (server := server_for(args)) is not None:
        return run_remote(args, server)
    secret = read_secret(args.provider) if command == "set" else None
    if command == "set" and not secret:
        return _fail("no API key: pipe it on standard input, or run on a terminal to be asked")
    return _print(args, asyncio.run(_local(settings, args, secret)))


async def _local(settings: Any, args: argparse.Namespace, secret: str | None) -> dict[str, Any]:
    from crewchief.db.migrate import app_store
    from crewchief.runtime.credentials import CredentialBook

    async with app_store(settings.resolved_database_url) as store:
        book = CredentialBook(settings, store)
        command, owner = args.credentials_command, getattr(args, "owner", None) or None
        if command == "rotate":
            return {"rotated": await book.rotate()}
        if command == "set":
            row = await book.put(owner, args.provider, secret, args.base_url)
            return _row(row)
        if command == "delete":
            deleted = await book.delete(owner, args.provider)
            return {"owner": owner, "provider": args.provider, "deleted": deleted}
        return {"owner": owner, "items": [_row(r) for r in await book.list(owner)]}


def _row(row: Any) -> dict[str, Any]:
    return {
        "provider": row.provider,
        "base_url": row.base_url,
        "fingerprint": row.fingerprint,
        "created_at": row.created_at.isoformat(),
        "updated_at": row.updated_at.isoformat(),
    }


def run_remote(args: argparse.Namespace, server: str) -> int:
    """The credentials of the API key's owner on a crewchief service."""
    from crewchief.cli.remote import call_server

    if args.owner:
        return _fail("--owner is for the local database: on a server the API key decides")
    command = args.credentials_command
    secret = read_secret(args.provider) if command == "set" else None
    if command == "set" and not secret:
        return _fail("no API key: pipe it on standard input, or run on a terminal to be asked")

    async def call(remote: Any) -> dict[str, Any]:
        if command == "set":
            return await remote.set_credential(args.provider, secret or "", args.base_url)
        if command == "delete":
            return await remote.delete_credential(args.provider)
        return await remote.credentials()

    return call_server(args, server, call, lambda data: _print(args, data))


def _print(args: argparse.Namespace, data: dict[str, Any]) -> int:
    if args.json:
        print(json.dumps(data))
        return EXIT_OK
    command = args.credentials_command
    if command == "rotate":
        print(
            f"encrypted {data['rotated']} credential(s) again with the first key of secret_keys;"
            " the other keys can be dropped now"
        )
        return EXIT_OK
    remote = getattr(args, "server", None) or os.environ.get("CREWCHIEF_SERVER")
    who = data.get("owner") or args.owner or ("your key's owner" if remote else "(no API key)")
    if command == "delete":
        done = f"deleted the {data['provider']} credential of {who}"
        print(done if data["deleted"] else f"{who} had no {data['provider']} credential")
        return EXIT_OK
    if command == "set":
        url = f" at {data['base_url']}" if data.get("base_url") else ""
        print(f"stored the {data['provider']} credential {data['fingerprint']}{url} of {who}")
        return EXIT_OK
    if not data["items"]:
        print(f"{who} has no credentials (store one: crewchief credentials set PROVIDER)")
    for item in data["items"]:
        url = item["base_url"] or "(provider's URL)"
        print(f"{item['provider']:<16} {item['fingerprint']:<16} {url}  {item['updated_at'][:19]}")
    return EXIT_OK
