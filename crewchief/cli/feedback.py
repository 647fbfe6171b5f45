"""``crewchief feedback add|list|summary|export``: rate operations, tasks and gateway
answers, see satisfaction per group, export preference pairs for DPO; here or on a server.

Locally every owner's targets and ratings count unless ``--owner`` names one; with
``--server`` the API key decides. Nothing heavy is imported at module level
(``crewchief --help`` builds these parsers).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from crewchief.cli.ops import add_remote_options, server_for
from crewchief.cli.remote import fail as _fail

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
GROUPS = ("role", "model", "skill", "route", "tier", "kind")
_WHEN = "from this date or time (2026-03-01, 2026-03-01T12:00Z) or span back (7d, 12h)"


def add_parser(sub: Any) -> None:
    feedback = sub.add_parser(
        "feedback", help="rate answers, see satisfaction, export preference pairs (DPO)"
    )
    actions = feedback.add_subparsers(dest="feedback_command", metavar="ACTION", required=True)
    add = actions.add_parser("add", help="rate an operation, a task or a gateway answer")
    what = add.add_mutually_exclusive_group(required=True)
    what.add_argument("--operation", metavar="ID", help="the operation (with --task: its task)")
    what.add_argument("--response", metavar="ID", help="a gateway answer's x_crewchief.id")
    add.add_argument("--task", type=int, metavar="N", help="the operation's task N")
    add.add_argument(
        "--version",
        type=int,
        dest="task_version",
        metavar="V",
        help="the task's version (default: current)",
    )
    rating = add.add_mutually_exclusive_group(required=True)
    rating.add_argument("--up", dest="thumb", action="store_const", const="up", help="thumbs up")
    rating.add_argument(
        "--down", dest="thumb", action="store_const", const="down", help="thumbs down"
    )
    rating.add_argument("--stars", type=int, choices=range(1, 6), metavar="N", help="1 to 5 stars")
    fix = add.add_mutually_exclusive_group()
    fix.add_argument("--correction", metavar="TEXT", help="what the answer should have been")
    fix.add_argument(
        "--correction-file", metavar="FILE", type=Path, help="the correction, from a file"
    )
    add.add_argument("--comment", metavar="TEXT", help="a remark kept with the rating")

    ls = actions.add_parser("list", help="ratings, the last given first")
    ls.add_argument("--kind", choices=("operation", "task", "response"))
    ls.add_argument("--limit", type=int, default=20, help="how many (default 20)")

    summary = actions.add_parser("summary", help="satisfaction per group, and the simplicity score")
    summary.add_argument(
        "--by", choices=GROUPS, default="role", help="group by this (default: role)"
    )

    export = actions.add_parser("export", help="preference pairs as JSON Lines (docs/feedback.md)")
    export.add_argument(
        "--format", choices=("dpo",), default="dpo", help="dpo: prompt, chosen, rejected"
    )
    export.add_argument(
        "--output", "-o", metavar="FILE", type=Path, help="default: standard output"
    )
    scrub = export.add_mutually_exclusive_group()
    scrub.add_argument(
        "--redact", metavar="SPEC",
        help="default (e-mails, secrets, phone numbers), off, or module:function"
        " (default: the feedback_redact setting; with --server, applied after the server's)",
    )  # fmt: skip
    scrub.add_argument("--no-redact", dest="redact", action="store_const", const="off")
    for parser in (ls, summary, export):
        parser.add_argument("--since", metavar="WHEN", help=f"ratings {_WHEN}")
        parser.add_argument("--until", metavar="WHEN", help="before this time; a date includes it")
    for parser in (add, ls, summary, export):
        parser.add_argument(
            "--owner", help="only this owner's (local only; default: every owner's)"
        )
        if parser is not export:
            parser.add_argument("--json", action="store_true", help="print JSON")
        add_remote_options(parser)


def _rating(args: argparse.Namespace) -> dict[str, Any]:
    return {"thumb": args.thumb, "stars": args.stars, "correction": args.correction,
            "comment": args.comment}  # fmt: skip


def _period(args: argparse.Namespace) -> dict[str, Any]:
    return {"since": args.since, "until": args.until}


def run(settings: Any, args: argparse.Namespace) -> int:
    """The local database's feedback, or with ``--server`` (``CREWCHIEF_SERVER``) the
    service's."""
    import asyncio

    from crewchief.client.facade import Crewchief
    from crewchief.db.repository import ANY_OWNER

    if args.feedback_command == "add":
        if args.response and args.task is not None:
            return _fail("--task is an operation's: give --operation, not --response")
        if args.correction_file is not None:
            try:
                args.correction = args.correction_file.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                return _fail(f"cannot read {args.correction_file}: {exc}")
    if (server := server_for(args)) is not None:
        return run_remote(args, server)
    owner = ANY_OWNER if args.owner is None else args.owner

    async def work() -> Any:
        async with Crewchief(settings) as chief:
            command = args.feedback_command
            if command == "add":
                return await chief.feedback(
                    operation_id=args.operation, task=args.task, version=args.task_version,
                    response_id=args.response, owner=owner, **_rating(args),
                )  # fmt: skip
            if command == "list":
                return await chief.list_feedback(
                    kind=args.kind, limit=args.limit, owner=owner, **_period(args)
                )
            if command == "summary":
                return await chief.feedback_summary(by=args.by, owner=owner, **_period(args))
            return await chief.export_preferences(redact=args.redact, owner=owner, **_period(args))

    try:
        return _print(args, asyncio.run(work()))
    except OSError as exc:
        return _fail(f"cannot write {args.output}: {exc.strerror}", EXIT_FAILED)


def _target(args: argparse.Namespace) -> str:
    from urllib.parse import quote

    if args.response:
        return f"responses/{quote(args.response, safe='')}"
    path = f"operations/{quote(args.operation, safe='')}"
    return path if args.task is None else f"{path}/tasks/{args.task}"


async def _remote_work(args: argparse.Namespace, remote: Any) -> Any:
    from crewchief.results import FeedbackRecord, FeedbackSaved, FeedbackSummary

    command = args.feedback_command
    if command == "add":
        body = {k: v for k, v in _rating(args).items() if v is not None}
        if args.task_version is not None:
            body["version"] = args.task_version
        return FeedbackSaved.model_validate(await remote.rate(_target(args), body))
    if command == "list":
        rows = await remote.feedback(kind=args.kind, limit=args.limit, **_period(args))
        return [FeedbackRecord.model_validate(r) for r in rows]
    if command == "summary":
        return FeedbackSummary.model_validate(
            await remote.feedback("/summary", by=args.by, **_period(args))
        )
    text = await remote.feedback("/export", format=args.format, **_period(args))
    pairs = [json.loads(line) for line in text.splitlines() if line.strip()]
    if args.redact is not None:  # on top of the server's own redaction
        from crewchief.client.redact import load_redactor, redact_pair

        scrub = load_redactor(args.redact)
        pairs = [redact_pair(pair, scrub) for pair in pairs]
    return pairs


def run_remote(args: argparse.Namespace, server: str) -> int:
    """The feedback the API key's owner may give and see on a crewchief service."""
    from crewchief.cli.remote import call_server

    if args.owner:
        return _fail("--owner is for the local database: on a server the API key decides")

    def show(data: Any) -> int:
        try:
            return _print(args, data)
        except OSError as exc:
            return _fail(f"cannot write {args.output}: {exc.strerror}", EXIT_FAILED)

    return call_server(args, server, lambda remote: _remote_work(args, remote), show)


def _print(args: argparse.Namespace, data: Any) -> int:
    from crewchief.cli._feedback_views import print_export, print_list, print_saved, print_summary

    command = args.feedback_command
    if command == "export":
        return print_export(args, data)
    if args.json:
        items = data if isinstance(data, list) else [data]
        dumped = [item.model_dump(mode="json") for item in items]
        print(json.dumps(dumped if isinstance(data, list) else dumped[0]))
        return EXIT_OK
    {"add": print_saved, "list": print_list, "summary": print_summary}[command](data)
    return EXIT_OK
