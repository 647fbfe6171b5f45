"""The ``crewchief`` command.

Only :mod:`argparse` is imported at module level so that ``crewchief --help``
starts fast; everything else loads inside the command that needs it.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_CANCELLED = 0, 1, 2, 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="crewchief",
        description="Plan with an expensive model, delegate to cheap ones, persist and stream every step.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument(
        "--config", metavar="FILE", help="TOML settings file (default: ./crewchief.toml)"
    )
    parser.add_argument(
        "--home", metavar="DIR", help="where state lives (default: $CREWCHIEF_HOME)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    run = sub.add_parser("run", help="run an operation with live progress")
    run.add_argument("request", help="what to do, in plain words")
    run.add_argument("--workspace", "-w", metavar="DIR", help="directory the operation works in")
    run.add_argument(
        "--route", choices=["fast", "plan"], help="force the route instead of detecting it"
    )
    run.add_argument("--json", action="store_true", help="print the final operation as JSON")

    from crewchief.cli import budgets as _cli_budgets
    from crewchief.cli import classify as _cli_classify
    from crewchief.cli import credentials as _cli_credentials
    from crewchief.cli import doctor as _cli_doctor
    from crewchief.cli import feedback as _cli_feedback
    from crewchief.cli import mcp as _cli_mcp
    from crewchief.cli import memory as _cli_memory
    from crewchief.cli import models as _cli_models
    from crewchief.cli import ops as _cli_ops
    from crewchief.cli import profile as _cli_profile
    from crewchief.cli import routes as _cli_routes
    from crewchief.cli import search as _cli_search
    from crewchief.cli import serve as _cli_serve
    from crewchief.cli import skills as _cli_skills
    from crewchief.cli import usage as _cli_usage
    from crewchief.cli import worker as _cli_worker

    _cli_ops.add_remote_options(run)
    _cli_ops.add_parser(sub)
    _cli_serve.add_parsers(sub)
    _cli_models.add_parser(sub)
    _cli_skills.add_parser(sub)
    _cli_worker.add_parser(sub)
    _cli_doctor.add_parser(sub)
    _cli_classify.add_parsers(sub)
    _cli_routes.add_parser(sub)
    _cli_memory.add_parser(sub)
    _cli_profile.add_parser(sub)
    _cli_search.add_parser(sub)
    _cli_usage.add_parser(sub)
    _cli_feedback.add_parser(sub)
    _cli_credentials.add_parser(sub)
    _cli_budgets.add_parser(sub)
    _cli_mcp.add_parser(sub)

    db = sub.add_parser("db", help="app database")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    db_sub.add_parser("upgrade", help="apply migrations up to the newest revision")
    db_sub.add_parser("current", help="print the database's revision")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``crewchief`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.version:
        from crewchief import __version__

        print(f"crewchief {__version__}")
        return EXIT_OK
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    from crewchief.errors import CrewchiefError

    try:
        return _dispatch(args)
    except CrewchiefError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return (
            EXIT_USAGE
            if exc.code
            in (
                "invalid_config",
                "invalid_request",
                "invalid_model",
                "unknown_local_model",
                "invalid_key",
            )
            else EXIT_FAILED
        )
    except KeyboardInterrupt:
        return EXIT_CANCELLED


# Commands whose module's run(settings, args) does everything (imported when used).
_RUN_MODULES = frozenset(
    {"models", "skills", "doctor", "worker", "routes", "memory", "profile", "search", "usage",
     "credentials", "feedback", "budgets", "mcp"}
)  # fmt: skip


def _dispatch(args: argparse.Namespace) -> int:
    import asyncio

    from crewchief.cli import ops as _cli_ops
    from crewchief.config import load_settings

    if args.command in ("run", "ops"):
        server = _cli_ops.server_for(args)
        if server is not None:
            return _cli_ops.run_remote(args, server)
    if args.command == "credentials" and args.credentials_command == "keygen":
        from crewchief.cli.credentials import keygen

        return keygen()  # before the settings: a key that does not load must not stop it
    settings = load_settings(args.config, home=args.home)
    if args.command in ("classify", "calibrate"):
        from crewchief.cli import classify as _cli_classify

        if args.command == "classify":
            return _cli_classify.classify(settings, args)
        import os

        from crewchief.config import config_file_path

        return _cli_classify.calibrate(settings, args, config_file_path(os.environ, args.config))
    if args.command in ("serve", "keys"):
        from crewchief.cli import serve as _cli_serve

        return getattr(_cli_serve, args.command)(settings, args)
    if args.command == "run":
        return asyncio.run(_run(settings, args))
    if args.command == "ops":
        return asyncio.run(_cli_ops.run_local(settings, args))
    if args.command == "db":
        return _db(settings, args)
    if args.command in _RUN_MODULES:
        import importlib

        return importlib.import_module(f"crewchief.cli.{args.command}").run(settings, args)
    raise AssertionError(args.command)


def _banner(settings: Any, console: Any) -> None:
    from crewchief.config import ALIASES, DEFAULT_MODEL

    if not settings.models_configured():
        line = (
            f"crewchief · no model configured: every alias uses the local model "
            f"{DEFAULT_MODEL.partition(':')[2]} (llama.cpp on this machine; "
            "set CREWCHIEF_MODEL or crewchief.toml to use another)"
        )
    else:
        line = "crewchief · " + " · ".join(f"{a} {settings.models[a].model}" for a in ALIASES)
    console.print(line, style="dim", highlight=False, markup=False)


async def _run(settings: Any, args: argparse.Namespace) -> int:
    import asyncio
    import signal
    import time

    from rich.console import Console

    from crewchief.cli.models import prepare_local_models
    from crewchief.cli.ops import exit_code, print_outcome, render
    from crewchief.client.facade import Crewchief

    err = Console(stderr=True, soft_wrap=True)
    out = Console(soft_wrap=True)
    _banner(settings, err)
    started = time.perf_counter()
    async with Crewchief(settings) as chief:
        await prepare_local_models(chief, err)
        started = time.perf_counter()  # the operation's time, not the one-time set-up
        handle = await chief.start(args.request, workspace=args.workspace, route=args.route)
        err.print(f"operation {handle.id}", style="dim", highlight=False)
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGINT, lambda: loop.create_task(handle.cancel()))
        try:
            await render(handle.events(), err)
            result = await handle.wait()
            if args.json:
                result = await chief.get(handle.id, events=True)
        finally:
            loop.remove_signal_handler(signal.SIGINT)
    elapsed = time.perf_counter() - started
    if args.json:
        out.print_json(result.model_dump_json())
    else:
        print_outcome(out, err, result, elapsed)
    return exit_code(result.status)


async def _upgrade_stores(settings: Any) -> list[str]:
    """Create the checkpoint tables and, on PostgreSQL, the job queue's: what was done."""
    from crewchief.db.checkpoint import checkpointer

    async with checkpointer(settings):
        pass  # opening it creates (or upgrades) LangGraph's checkpoint tables
    done = [f"checkpoints: {settings.resolved_checkpoint_url.split('@')[-1]}: ready"]
    if settings.is_postgres:
        try:
            from crewchief.executor.jobs import upgrade_queue_schema

            applied = await upgrade_queue_schema(settings)
        except ImportError:
            return done
        except Exception as exc:  # noqa: BLE001 - e.g. procrastinate not installed
            if settings.executor == "queue":
                raise
            return [*done, f"job queue: skipped ({exc})"]
        done.append(f"job queue: {', '.join(applied) if applied else 'up to date'}")
    return done


def _db(settings: Any, args: argparse.Namespace) -> int:
    import asyncio

    from crewchief.db.migrate import _current, upgrade
    from crewchief.db.writer import Writer

    url = settings.resolved_database_url
    if args.db_command == "upgrade":
        upgrade(url)
        for line in asyncio.run(_upgrade_stores(settings)):
            print(line)

    async def revision() -> str | None:
        store = Writer(url)
        try:
            return await store.read(_current)
        finally:
            await store.close()

    print(f"{url}: revision {asyncio.run(revision()) or '(empty)'}")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
