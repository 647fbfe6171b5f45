"""A small MCP server for the client tests, run as a script (stdio, or ``--http PORT``).

Tools: ``echo``, ``read_text`` (a file's text), ``slow`` (sleeps), ``huge`` (a long text),
``die`` (the process exits mid-call) and ``pid``. With ``MCP_CALL_LOG`` set, each call's tool
name is appended to that file, so a test can tell whether the server was called at all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path

from mcp.server.mcpserver import MCPServer

server = MCPServer("crewchief-test-tools")


def _log(name: str) -> None:
    path = os.environ.get("MCP_CALL_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(name + "\n")


@server.tool(description="Return the text it is given, prefixed with 'echo: '.")
def echo(text: str) -> str:
    _log("echo")
    return f"echo: {text}"


@server.tool(description="Read a UTF-8 text file and return its content.")
def read_text(path: str) -> str:
    _log("read_text")
    return Path(path).read_text(encoding="utf-8")


@server.tool(description="Sleep this many seconds, then say so.")
async def slow(seconds: float) -> str:
    _log("slow")
    await asyncio.sleep(seconds)
    return f"slept {seconds}s"


@server.tool(description="Return a text of this many characters.")
def huge(chars: int) -> str:
    _log("huge")
    return ("0123456789" * (chars // 10 + 1))[:chars]


@server.tool(description="End the server's process in the middle of the call.")
def die() -> str:
    _log("die")
    os._exit(3)


@server.tool(description="The server's process id.")
def pid() -> str:
    _log("pid")
    return str(os.getpid())


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int, help="serve streamable HTTP on this loopback port")
    options = parser.parse_args()
    if options.http:
        server.run("streamable-http", host="127.0.0.1", port=options.http)
    else:
        server.run()
