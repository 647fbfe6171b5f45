"""``crewchief worker``: run operations from the job queue (scaled mode)."""

from __future__ import annotations

import argparse
import asyncio
import logging
from typing import Any

EXIT_OK = 0


def add_parser(sub: Any) -> None:
    worker = sub.add_parser(
        "worker",
        help="run operations from the job queue (scaled mode: PostgreSQL database, executor queue)",
    )
    worker.add_argument(
        "--concurrency", type=int, default=4, metavar="N", help="operations run at once (4)"
    )
    worker.add_argument("--name", help="this worker's name in the queue (default: host:pid:token)")
    worker.add_argument(
        "--drain-seconds",
        type=float,
        default=None,
        metavar="S",
        help="on SIGTERM, how long running operations may take to finish their current step"
        " before they go back on the queue (20)",
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=None,
        metavar="PORT",
        help="serve this worker's Prometheus metrics on PORT (when each process is scraped on"
        " its own; not needed under `crewchief serve --workers`)",
    )
    worker.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )


def run(settings: Any, args: argparse.Namespace) -> int:
    """Run a worker until SIGTERM or SIGINT; its running operations go back on the queue."""
    from crewchief import logs, metrics
    from crewchief.errors import CrewchiefError
    from crewchief.executor.worker import Worker

    if args.concurrency < 1:
        raise CrewchiefError("--concurrency: expected 1 or more")
    if args.drain_seconds is not None and not 0 <= args.drain_seconds <= 3600:
        raise CrewchiefError("--drain-seconds: expected 0 to 3600")
    if args.metrics_port is not None and not 1 <= args.metrics_port <= 65535:
        raise CrewchiefError("--metrics-port: expected a port number, 1 to 65535")
    logs.configure(args.log_level, settings.log_format)
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    if args.metrics_port is not None:
        metrics.serve_http(args.metrics_port)
    options: dict[str, Any] = {}
    if args.drain_seconds is not None:
        options["drain_seconds"] = args.drain_seconds
    worker = Worker(settings, concurrency=args.concurrency, name=args.name, **options)
    if settings.gateway.routes_refresh.strip():
        from crewchief.gateway import routing

        worker.add_periodic(
            "refresh_routes",
            settings.gateway.routes_refresh,
            lambda: routing.refresh_saved(settings),
        )
    asyncio.run(worker.run())
    return EXIT_OK
