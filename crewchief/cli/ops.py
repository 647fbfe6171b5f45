"""``crewchief ops``: list, show, watch, cancel and resume operations, here or on a server.

Nothing heavy is imported at module level (``crewchief --help`` builds these parsers).
Remote commands (``--server``/``CREWCHIEF_SERVER``) go through :mod:`crewchief.cli.remote`.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import AsyncIterator
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130
DEFAULT_SERVER = "http://127.0.0.1:8000"


def add_remote_options(parser: argparse.ArgumentParser, *, default: str | None = None) -> None:
    """``--server`` and ``--api-key`` (with their environment variables)."""
    if default:
        what = f"the crewchief service at URL (default: $CREWCHIEF_SERVER or {default})"
    else:
        what = "use the crewchief service at URL, not the local database (env: CREWCHIEF_SERVER)"
    parser.add_argument("--server", metavar="URL", help=what)
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help="API key for --server (env: CREWCHIEF_API_KEY, which keeps it out of `ps`)",
    )


def add_parser(sub: Any) -> None:
    ops = sub.add_parser("ops", help="inspect, follow, cancel and resume operations")
    ops_sub = ops.add_subparsers(dest="ops_command", metavar="ACTION", required=True)
    ls = ops_sub.add_parser("list", help="recent operations, newest first")
    ls.add_argument("--status", help="only operations with this status")
    ls.add_argument(
        "--route", choices=("fast", "plan", "undecided"), help="only operations of this route"
    )
    ls.add_argument("--key", metavar="KEY_ID", help="only those this API key id started")
    ls.add_argument(
        "--since", help="only those created at or after: a date, a date and time, or 7d / 12h"
    )
    ls.add_argument("--until", help="only those created before (a date includes its day)")
    ls.add_argument(
        "--search",
        metavar="TEXT",
        help="only those whose request contains TEXT, or id starts with it",
    )
    ls.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    ls.add_argument("--json", action="store_true")
    add_remote_options(ls)
    show = ops_sub.add_parser("show", help="one operation: route, plan, tasks, usage, events")
    show.add_argument("id")
    show.add_argument("--json", action="store_true")
    add_remote_options(show)
    watch = ops_sub.add_parser(
        "watch", help="follow an operation on a server live, until it ends (resumes on drops)"
    )
    watch.add_argument("id")
    watch.add_argument("--json", action="store_true", help="print the final operation as JSON")
    add_remote_options(watch, default=DEFAULT_SERVER)
    cancel = ops_sub.add_parser("cancel", help="cancel an operation (idempotent)")
    cancel.add_argument("id")
    cancel.add_argument("--json", action="store_true")
    add_remote_options(cancel)
    resume = ops_sub.add_parser(
        "resume", help="continue an interrupted operation from its checkpoint (local only)"
    )
    resume.add_argument("id")
    resume.add_argument("--json", action="store_true")
    add_remote_options(resume)


def server_for(args: argparse.Namespace) -> str | None:
    """The server to use: ``--server``, ``$CREWCHIEF_SERVER``, the default for ``ops watch``."""
    server = getattr(args, "server", None) or os.environ.get("CREWCHIEF_SERVER") or None
    if server is None and getattr(args, "ops_command", None) == "watch":
        server = DEFAULT_SERVER
    return server


# -- shared rendering --------------------------------------------------------------------------


async def render(events: AsyncIterator[Any], err: Any) -> None:
    """Show events as they come: Rich live view on a TTY, one line per event otherwise."""
    from rich.live import Live

    from crewchief.cli.progress import PlainProgress, ProgressView
    from crewchief.events import EventType

    if err.is_terminal:
        view = ProgressView()
        handle = view.handle
        live: Any = Live(view, console=err, refresh_per_second=12, transient=False)
    else:
        handle = PlainProgress(err).handle
        live = None
    if live is not None:
        live.start()
    try:
        async for event in events:
            handle(event)
            if event.type == EventType.PLAN_AWAITING_APPROVAL:
                err.print(
                    f"plan awaits approval: POST /v1/operations/{event.operation_id}/plan",
                    style="yellow",
                    highlight=False,
                )
    finally:
        if live is not None:
            live.stop()


def print_outcome(out: Any, err: Any, result: Any, elapsed: float) -> None:
    """The answer on stdout, the status, tokens and time on stderr."""
    if result.answer:
        out.print(result.answer, highlight=False, markup=False)
    style = "green" if result.status == "completed" else "red"
    err.print(f"{result.status}", style=f"bold {style}", end="")
    if result.error:
        err.print(f": {result.error}", style=style, markup=False, highlight=False, end="")
    u = result.usage
    err.print(
        f"  · tokens in {u.input} · out {u.output} · reasoning {u.reasoning}"
        f" · cost {_cost(result)} · {elapsed:.2f}s",
        style="dim",
        highlight=False,
    )


def money(usd: float) -> str:
    """Dollars for people: cents for whole amounts, more digits for the small ones."""
    if usd == 0:
        return "$0"
    if usd < 0.000001:
        return "<$0.000001"
    return f"${usd:,.2f}" if usd >= 1 else f"${usd:.6f}".rstrip("0")


def _cost(result: Any) -> str:
    """The operation's cost, and how many of its calls had no price."""
    text = money(result.cost_usd)
    if result.unpriced_calls:
        text += f" ({result.unpriced_calls} unpriced calls)"
    return text


def exit_code(status: str) -> int:
    return {"completed": EXIT_OK, "cancelled": EXIT_CANCELLED}.get(status, EXIT_FAILED)


def print_cancelled(out: Any, result: Any, as_json: bool) -> None:
    if as_json:
        out.print_json(result.model_dump_json())
    elif result.status == "cancelled":
        out.print(f"{result.id} cancelled", highlight=False)
    else:
        out.print(f"{result.id} already ended: {result.status}", highlight=False)


# -- local -------------------------------------------------------------------------------------


async def run_local(settings: Any, args: argparse.Namespace) -> int:
    """``ops list|show|cancel|resume`` against this machine's database."""
    from rich.console import Console

    from crewchief.client.facade import Crewchief

    out = Console(soft_wrap=True)
    async with Crewchief(settings) as chief:
        if args.ops_command == "list":
            print_list(out, await chief.list(limit=args.limit, **list_filters(args)), args.json)
            return EXIT_OK
        if args.ops_command == "show":
            print_show(out, await chief.get(args.id, events=True), args.json)
            return EXIT_OK
        if args.ops_command == "cancel":
            print_cancelled(out, await chief.cancel(args.id), args.json)
            return EXIT_OK
        handle = await chief.resume(args.id)
        result = await handle.wait()
        if args.json:
            out.print_json((await chief.get(args.id, events=True)).model_dump_json())
        else:
            print_show(out, result)
        return EXIT_OK if result.status == "completed" else EXIT_FAILED


def list_filters(args: argparse.Namespace) -> dict[str, str | None]:
    """``ops list``'s filters, as ``Crewchief.list`` and ``GET /v1/operations`` take them."""
    return {
        "status": args.status,
        "route": args.route,
        "key": args.key,
        "since": args.since,
        "until": args.until,
        "q": args.search,
    }


def print_list(out: Any, items: list, as_json: bool = False) -> None:
    if as_json:
        out.print_json(data=[i.model_dump(mode="json") for i in items])
        return
    if not items:
        out.print("no operations", style="dim")
        return
    for i in items:
        request = i.request if len(i.request) <= 60 else i.request[:57] + "..."
        created = i.created_at.strftime("%Y-%m-%d %H:%M:%S")
        out.print(
            f"{i.id}  {i.status:<10} {i.route or '-':<5} {i.tasks:>3} tasks  {created}  {request}",
            markup=False,
            highlight=False,
            soft_wrap=True,
        )


def print_show(out: Any, r: Any, as_json: bool = False) -> None:
    if as_json:
        out.print_json(r.model_dump_json())
        return
    out.print(
        f"[bold]{r.id}[/] · {r.status} · route {r.route or '-'}"
        + (" (forced)" if r.route_forced else "")
    )
    out.print(f"request: {r.request}", markup=False, highlight=False)
    if r.simplicity.score is not None:
        tier = f" · tier {r.simplicity.tier}" if r.simplicity.tier else ""
        out.print(
            f"simplicity {r.simplicity.score:.2f}{tier}: " + "; ".join(r.simplicity.reasons),
            markup=False,
            highlight=False,
        )
    if r.plan_text:
        out.print("[bold]plan[/]")
        out.print(r.plan_text, markup=False, highlight=False)
    if r.tasks:
        out.print(_task_table(r.tasks))
    if r.answer:
        out.print("[bold]answer[/]")
        out.print(r.answer, markup=False, highlight=False)
    if r.error:
        out.print(f"[red]error:[/] {r.error}", highlight=False)
    u = r.usage
    out.print(
        f"tokens: in {u.input} · out {u.output} · reasoning {u.reasoning} · cost {_cost(r)}",
        style="dim",
        highlight=False,
    )
    for m in r.usage_by_model:
        what = f"{m.node} ({m.purpose})" if m.purpose else m.node
        price = "unpriced" if m.unpriced_calls == m.calls else money(m.cost_usd)
        out.print(
            f"  {m.alias:<12} {m.model:<30} {what:<28} {m.calls} calls · in {m.input}"
            f" · out {m.output} · {price}",
            style="dim",
            highlight=False,
        )


def _task_table(tasks: list) -> Any:
    from rich.table import Table

    table = Table(
        "#", "status", "task", "skill", "model", "tokens in/out", "started", "completed", box=None
    )
    for t in tasks:
        table.add_row(
            str(t.sequence),
            t.status,
            t.description,
            t.skill or "-",
            t.model or "-",
            f"{t.usage.input}/{t.usage.output}",
            t.started_at.strftime("%H:%M:%S.%f")[:-3] if t.started_at else "-",
            t.completed_at.strftime("%H:%M:%S.%f")[:-3] if t.completed_at else "-",
        )
    return table


# -- remote ------------------------------------------------------------------------------------


def _fail(message: str, code: int) -> int:
    import sys

    print(f"error: {message}", file=sys.stderr)
    return code


def run_remote(args: argparse.Namespace, server: str) -> int:
    """``run`` and ``ops`` against a crewchief service; errors become messages and exit codes."""
    import asyncio

    from crewchief.cli.remote import RemoteError, Unauthorized, Unreachable

    if not server.startswith(("http://", "https://")):
        return _fail(f"--server: expected an http:// or https:// URL, got {server!r}", EXIT_USAGE)
    if args.command == "ops" and args.ops_command == "resume":
        return _fail(
            "ops resume is not available with a server (--server or CREWCHIEF_SERVER): it "
            "continues the operation in this process; run it where the operation's database is",
            EXIT_USAGE,
        )
    api_key = args.api_key or os.environ.get("CREWCHIEF_API_KEY") or None
    if getattr(args, "workspace", None):  # the server needs an absolute path
        args.workspace = os.path.abspath(os.path.expanduser(args.workspace))
    try:
        return asyncio.run(_remote(args, server, api_key))
    except Unauthorized as exc:
        if api_key is None:
            return _fail(
                f"{server} requires an API key: pass --api-key or set CREWCHIEF_API_KEY", EXIT_USAGE
            )
        return _fail(
            f"{server} refused the API key ({exc.message}); check --api-key or CREWCHIEF_API_KEY",
            EXIT_USAGE,
        )
    except Unreachable as exc:
        return _fail(f"cannot reach the crewchief server at {exc.url}: {exc.reason}", EXIT_FAILED)
    except RemoteError as exc:
        code = EXIT_USAGE if exc.status in (400, 413, 422) else EXIT_FAILED
        return _fail(f"{exc.code}: {exc.message}", code)


async def _remote(args: argparse.Namespace, server: str, api_key: str | None) -> int:
    import asyncio

    from rich.console import Console

    from crewchief.cli.remote import Remote

    out, err = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)
    async with Remote(server, api_key) as remote:
        if args.command == "run":
            return await _remote_run(remote, args, out, err)
        if args.ops_command == "list":
            print_list(out, await remote.list(limit=args.limit, **list_filters(args)), args.json)
        elif args.ops_command == "show":
            print_show(out, await remote.get(args.id, events=True), args.json)
        elif args.ops_command == "cancel":
            print_cancelled(out, await remote.cancel(args.id), args.json)
        else:
            await remote.get(args.id)  # unknown id, bad key, no server: say so before streaming
            err.print(f"operation {args.id}", style="dim", highlight=False)
            task = asyncio.current_task()
            assert task is not None
            return await _follow(remote, args.id, args.json, out, err, task.cancel)
        return EXIT_OK


async def _remote_run(remote: Any, args: argparse.Namespace, out: Any, err: Any) -> int:
    """Start the operation on the server and follow it; Ctrl-C cancels it there."""
    import asyncio

    err.print(f"crewchief · {remote.url}", style="dim", highlight=False, markup=False)
    accepted = await remote.create(args.request, workspace=args.workspace, route=args.route)
    op_id = accepted["id"]
    err.print(f"operation {op_id}", style="dim", highlight=False)
    loop = asyncio.get_running_loop()
    main = asyncio.current_task()
    assert main is not None
    cancelling: list[Any] = []

    def interrupt() -> None:
        if cancelling:  # a second Ctrl-C: stop waiting
            main.cancel()
            return
        err.print("cancelling…", highlight=False)
        cancelling.append(loop.create_task(_cancel(remote, op_id, err)))

    return await _follow(remote, op_id, args.json, out, err, interrupt)


async def _cancel(remote: Any, op_id: str, err: Any) -> None:
    from crewchief.cli.remote import RemoteError, Unreachable

    try:
        await remote.cancel(op_id)
    except (RemoteError, Unreachable) as exc:
        err.print(f"could not cancel {op_id}: {exc}", style="red", highlight=False, markup=False)


async def _follow(
    remote: Any, op_id: str, as_json: bool, out: Any, err: Any, on_interrupt: Any
) -> int:
    """Render the operation's events until it ends, then print its outcome like ``run``."""
    import asyncio
    import contextlib
    import signal
    import time

    started = time.perf_counter()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGINT, on_interrupt)
    try:
        async with contextlib.aclosing(remote.events(op_id, deltas=err.is_terminal)) as events:
            await render(events, err)
    except asyncio.CancelledError:
        err.print(
            f"stopped watching; operation {op_id} goes on (crewchief ops watch {op_id})",
            style="yellow",
            highlight=False,
        )
        return EXIT_CANCELLED
    finally:
        loop.remove_signal_handler(signal.SIGINT)
    result = await remote.get(op_id, events=as_json)
    if as_json:
        out.print_json(result.model_dump_json())
    else:
        elapsed = time.perf_counter() - started
        if result.completed_at is not None:
            elapsed = (
                result.completed_at - (result.started_at or result.created_at)
            ).total_seconds()
        print_outcome(out, err, result, elapsed)
    return exit_code(result.status)
