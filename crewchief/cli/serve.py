"""``crewchief serve`` (the REST service) and ``crewchief keys`` (its API keys)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parsers(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the REST API (operations, events) in this process")
    serve.add_argument("--host", help="interface to listen on (default: api.host, 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default: api.port, 8000)")
    serve.add_argument(
        "--workspace-root",
        action="append",
        default=[],
        metavar="DIR",
        help="allow workspaces under DIR (repeatable; adds to api.workspace_roots)",
    )
    serve.add_argument(
        "--no-auth",
        action="store_true",
        help="dev mode: no API keys, every caller sees every operation (loopback hosts only)",
    )
    serve.add_argument(
        "--access-log", action="store_true", help="log one line per request (off by default)"
    )
    serve.add_argument(
        "--workers",
        type=int,
        default=0,
        metavar="N",
        help="also start N `crewchief worker` processes and run operations on them (scaled mode"
        " on one machine; needs a PostgreSQL database_url); they stop with the server",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])

    keys = sub.add_parser("keys", help="API keys of the REST service: create, list, revoke")
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)
    create = keys_sub.add_parser("create", help="create a key (the key is printed once)")
    create.add_argument("--name", default="default", help="a label for the key")
    create.add_argument(
        "--owner",
        help="who its operations belong to; keys with one owner share them (default: name)",
    )
    create.add_argument(
        "--tier", metavar="PLAN",
        help="its plan in the settings' [plans] (default: default_plan, if set)",
    )  # fmt: skip
    create.add_argument("--daily-usd", type=float, metavar="USD", help="a daily budget of its own")
    create.add_argument(
        "--monthly-usd", type=float, metavar="USD", help="a monthly budget of its own"
    )
    create.add_argument("--json", action="store_true")
    tier = keys_sub.add_parser("tier", help="move a key to another plan")
    tier.add_argument("id", help="the key id")
    tier.add_argument("plan", help="a plan of the settings' [plans], or 'default'")
    ls = keys_sub.add_parser("list", help="keys and their owners (never the secrets)")
    ls.add_argument("--json", action="store_true")
    revoke = keys_sub.add_parser("revoke", help="revoke a key by id (takes effect within 2 s)")
    revoke.add_argument("id", help="the key id, e.g. key_3f9a1c2b7d40 (see: keys list)")


def serve(settings: Any, args: argparse.Namespace) -> int:
    """Run the API with uvicorn until interrupted."""
    import uvicorn

    from crewchief.api.app import create_app, loopback

    update: dict[str, Any] = {}
    if args.host:
        update["host"] = args.host
    if args.port:
        update["port"] = args.port
    if args.workspace_root:
        from pathlib import Path

        roots = [Path(p).expanduser().resolve() for p in args.workspace_root]
        missing = [str(p) for p in roots if not p.is_dir()]
        if missing:
            print(
                f"error: --workspace-root: not a directory: {', '.join(missing)}", file=sys.stderr
            )
            return EXIT_USAGE
        update["workspace_roots"] = [*settings.api.workspace_roots, *roots]
    api = settings.api.model_copy(update=update)
    settings = settings.model_copy(update={"api": api})
    if args.no_auth:
        if not loopback(api.host):
            print(
                f"error: --no-auth is allowed only on a loopback host (127.0.0.1, ::1, localhost),"
                f" not {api.host!r}",
                file=sys.stderr,
            )
            return EXIT_USAGE
        print(
            "WARNING: authentication is OFF (--no-auth): anyone who can reach"
            f" {api.host}:{api.port} can start, read and cancel every operation.",
            file=sys.stderr,
        )
    if args.workers < 0:
        print("error: --workers: expected 0 or more", file=sys.stderr)
        return EXIT_USAGE
    if args.workers and not settings.is_postgres:
        print(
            "error: --workers needs a PostgreSQL database_url (CREWCHIEF_DATABASE_URL): the job"
            " queue lives in it",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.workers:
        settings = settings.model_copy(update={"executor": "queue"})
    from crewchief import logs

    logs.configure(args.log_level, settings.log_format)
    roots = ", ".join(str(r) for r in api.workspace_roots) or "none (set --workspace-root)"
    banner = (
        f"crewchief API on http://{api.host}:{api.port} · dashboard / · docs /docs"
        f" · workspaces: {roots}"
    ) + (f" · {args.workers} workers" if args.workers else "")
    if settings.log_format == "json":
        logging.getLogger("crewchief.serve").info(banner)
    else:
        print(banner, file=sys.stderr)
    if args.workers:
        _share_metrics(settings)
    workers = _Workers(args) if args.workers else None
    try:
        app = create_app(settings, auth=not args.no_auth)
        uvicorn.run(
            app,
            host=api.host,
            port=api.port,
            log_level=args.log_level,
            access_log=args.access_log,
            timeout_graceful_shutdown=10,
            # JSON: uvicorn's lines go through the same handler as everyone's.
            **({"log_config": None} if settings.log_format == "json" else {}),
        )
    finally:
        if workers is not None:
            workers.stop()
    return EXIT_OK


def _share_metrics(settings: Any) -> None:
    """The server and its workers write their metrics to one directory; the server's
    ``/metrics`` adds them up (prometheus-client's multiprocess mode).

    An existing ``PROMETHEUS_MULTIPROC_DIR`` is used as it is; otherwise a directory of
    this server's own under the home, emptied first (old files would count twice).
    """
    import os
    import shutil

    from crewchief import metrics

    if metrics.multiprocess():
        return
    where = settings.home / "metrics" / f"serve-{settings.api.port}"
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    os.environ[metrics.MULTIPROC_ENV] = str(where)


class _Workers:
    """``crewchief worker`` children with this process's environment, in queue mode.

    A worker that exits while the server runs (killed, out of memory) is reaped and
    started again, after a pause that doubles while new ones keep dying young.
    """

    def __init__(self, args: argparse.Namespace):
        import os
        import threading

        self.env = dict(os.environ, CREWCHIEF_EXECUTOR="queue")
        self.command = [sys.executable, "-m", "crewchief.cli"]
        if args.config:
            self.command += ["--config", args.config]
        if args.home:
            self.command += ["--home", args.home]
        self.command += ["worker", "--log-level", args.log_level]
        self.processes = [self._start() for _ in range(args.workers)]
        self._stopping = threading.Event()
        self._watch = threading.Thread(target=self._supervise, name="workers", daemon=True)
        self._watch.start()

    def _start(self) -> Any:
        import subprocess
        import time

        process = subprocess.Popen(
            self.command,
            env=self.env,
            preexec_fn=_stop_with_parent,  # noqa: PLW1509 - only sets the death signal
        )
        process.started = time.monotonic()  # type: ignore[attr-defined]
        return process

    def _supervise(self) -> None:
        import time

        from crewchief import metrics

        log = logging.getLogger("crewchief.serve")
        pause = 1.0
        while not self._stopping.wait(0.5):
            for i, process in enumerate(self.processes):
                code = process.poll()  # reaps it: a zombie would look alive to its lease
                if code is None or self._stopping.is_set():
                    continue
                metrics.process_dead(process.pid)
                lived = time.monotonic() - process.started
                pause = min(pause * 2, 30.0) if lived < 10 else 1.0
                log.warning(
                    "worker %d exited (code %s) after %.0f s; starting another in %.0f s",
                    process.pid,
                    code,
                    lived,
                    pause,
                )
                if self._stopping.wait(pause):
                    return
                self.processes[i] = self._start()

    def stop(self) -> None:
        """SIGTERM (they let running steps finish and hand the rest back), then wait; kill
        what does not stop in the time a worker gives itself."""
        import subprocess

        from crewchief import metrics
        from crewchief.executor.worker import DRAIN_S, STOP_DEADLINE_S

        self._stopping.set()
        self._watch.join(timeout=5)
        for worker in self.processes:
            if worker.poll() is None:
                worker.terminate()
        for worker in self.processes:
            try:
                worker.wait(timeout=DRAIN_S + STOP_DEADLINE_S)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            metrics.process_dead(worker.pid)


def _stop_with_parent() -> None:
    """In a worker child (Linux): get SIGTERM when the server dies, however it dies.

    uvicorn re-raises the SIGTERM it caught once it has shut down, so the server may end
    before its own cleanup runs; the kernel still tells the children.
    """
    import ctypes
    import signal

    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def keys(settings: Any, args: argparse.Namespace) -> int:
    import asyncio

    return asyncio.run(_keys(settings, args))


async def _keys(settings: Any, args: argparse.Namespace) -> int:
    from crewchief.db import keys as api_keys
    from crewchief.db.migrate import app_store

    async with app_store(settings.resolved_database_url) as store:
        if args.keys_command in ("create", "tier"):
            plan = args.tier if args.keys_command == "create" else args.plan
            plan = None if plan in (None, "default") else plan
            if plan is not None and plan not in settings.plans:
                known = ", ".join(sorted(settings.plans)) or "none: add [plans.NAME] to the config"
                raise api_keys.ApiKeyError(f"--tier: no plan {plan!r}; the plans are: {known}")
        if args.keys_command == "tier":
            info = await api_keys.set_tier(store, args.id, plan)
            print(f"{info.id} (owner {info.owner}) is on plan {info.tier or 'default'}")
            return EXIT_OK
        if args.keys_command == "create":
            info, secret = await api_keys.create_key(
                store, name=args.name, owner=args.owner or args.name, tier=plan
            )
            if args.daily_usd is not None or args.monthly_usd is not None:
                from crewchief.db.budgets import BudgetRow, put_budget

                row = BudgetRow("key", info.id, args.daily_usd, args.monthly_usd, set_by="operator")
                await put_budget(store, row)
            if args.json:
                print(json.dumps({**_as_dict(info), "key": secret}))
            else:
                print(secret)
                print(
                    f"{info.id} · owner {info.owner} · name {info.name}: store the key now,"
                    " it is not shown again",
                    file=sys.stderr,
                )
            return EXIT_OK
        if args.keys_command == "list":
            items = await api_keys.list_keys(store)
            if args.json:
                print(json.dumps([_as_dict(i) for i in items]))
            elif not items:
                print("no API keys (create one: crewchief keys create --name NAME)")
            for i in [] if args.json else items:
                state = f"revoked {i.revoked_at:%Y-%m-%d %H:%M}" if i.revoked_at else "active"
                plan = i.tier or "-"
                print(f"{i.id}  {i.prefix}…  {i.owner:<16} {i.name:<20} {plan:<10} {state}")
            return EXIT_OK
        info = await api_keys.revoke_key(store, args.id)
        print(f"revoked {info.id} (owner {info.owner}, name {info.name})")
        return EXIT_OK


def _as_dict(info: Any) -> dict[str, Any]:
    return {
        "id": info.id,
        "name": info.name,
        "owner": info.owner,
        "prefix": info.prefix,
        "created_at": info.created_at.isoformat(),
        "revoked_at": info.revoked_at.isoformat() if info.revoked_at else None,
        "tier": info.tier,
    }
