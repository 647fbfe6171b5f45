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
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )


def run(settings: Any, args: argparse.Namespace) -> int:
    """Run a worker until SIGTERM or SIGINT; its running operations go back on the queue."""
    from crewchief.errors import CrewchiefError
    from crewchief.executor.worker import Worker

    if args.concurrency < 1:
        raise CrewchiefError("--concurrency: expected 1 or more")
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("procrastinate").setLevel(logging.WARNING)
    asyncio.run(Worker(settings, concurrency=args.concurrency, name=args.name).run())
    return EXIT_OK
