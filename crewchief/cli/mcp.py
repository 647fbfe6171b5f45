"""``crewchief mcp``: crewchief's MCP server over stdin and stdout, for a local MCP client.

The client (an editor, a desktop assistant, another agent) starts the command and speaks
the protocol on its stdin and stdout; nothing else is written to stdout, logs go to stderr.
Operations run in this process with the user's settings, as ``crewchief run`` runs them,
and belong to the local user (no API key, no workspace roots). When the client closes stdin
the command ends, and operations still running end ``cancelled``.
"""

from __future__ import annotations

import argparse
from typing import Any

EXIT_OK = 0


def add_parser(sub: Any) -> None:
    """Add ``crewchief mcp`` to the ``crewchief`` subcommands."""
    mcp = sub.add_parser("mcp", help="serve crewchief's tools to an MCP client over stdin/stdout")
    mcp.add_argument(
        "--log-level",
        default="warning",
        choices=["debug", "info", "warning", "error"],
        help="what is logged to stderr (default: warning)",
    )


def run(settings: Any, args: argparse.Namespace) -> int:
    """Serve until the client closes stdin; returns the exit code."""
    import asyncio

    from crewchief import logs

    logs.configure(args.log_level, settings.log_format)
    asyncio.run(_serve(settings))
    return EXIT_OK


async def _serve(settings: Any) -> None:
    import asyncio
    import contextlib
    import signal
    import sys

    from crewchief.client.facade import Crewchief
    from crewchief.interop.mcp_server import LOCAL, build_mcp_server

    # A client that does not wait for the end after closing stdin sends SIGTERM: stop the
    # same way, so operations still running are recorded cancelled.
    task = asyncio.current_task()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError):  # no signal handlers on Windows
        loop.add_signal_handler(signal.SIGTERM, task.cancel)
    chief = Crewchief(settings)
    with contextlib.suppress(asyncio.CancelledError):
        # Whatever opening prints must not reach the client: stdout carries only the protocol.
        with contextlib.redirect_stdout(sys.stderr):
            await chief.open()
        try:
            await build_mcp_server(chief, principal=LOCAL).run_stdio_async()
        finally:
            with contextlib.suppress(NotImplementedError):
                loop.remove_signal_handler(signal.SIGTERM)  # closing now: let it finish
            await chief.close()
