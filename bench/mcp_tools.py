"""MCP tools: what a call through crewchief's MCP client costs next to a built-in file tool.

Run from the repository root::

    python -m bench.mcp_tools [--n 300] [--warmup 30] [--cold 5] [--json]

A small MCP server (written to a temporary file; ``MCPServer`` of the official SDK) offers
``read_file``, reading a file of a temporary workspace. The same 4 kB file is read ``--n``
times, one call after another, by the built-in ``read_file`` (as the executors' tool loop
runs it, on a worker thread) and through :class:`crewchief.tools.mcp.McpManager` from the
server over stdio and over streamable HTTP (a server process on a free loopback port, started
and stopped by the harness, which prints its PID on stderr). Cold start is a new manager's
first listing of the tools: for stdio, spawning the server, initializing and listing; for HTTP
(the server already runs), connecting, initializing and listing. This is a report, not a
test: it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._scenarios import percentile
from bench.server import build_report, render_table

TARGETS: dict[str, tuple[str, float]] = {
    "stdio_p50_ms": ("≤", 5.0),
    "http_p50_ms": ("≤", 15.0),
    "stdio_cold_p50_ms": ("≤", 2000.0),
    "same_output": ("≥", 1),
}
ROWS = {
    "builtin_p50_ms": ("built-in read_file", "per call, p50", "ms"),
    "builtin_p95_ms": ("built-in read_file", "per call, p95", "ms"),
    "builtin_mean_ms": ("built-in read_file", "per call, mean", "ms"),
    "stdio_p50_ms": ("MCP over stdio", "per call, p50", "ms"),
    "stdio_p95_ms": ("MCP over stdio", "per call, p95", "ms"),
    "stdio_mean_ms": ("MCP over stdio", "per call, mean", "ms"),
    "stdio_cold_p50_ms": ("MCP over stdio", "cold start (spawn + initialize + list), p50", "ms"),
    "http_p50_ms": ("MCP over HTTP", "per call, p50", "ms"),
    "http_p95_ms": ("MCP over HTTP", "per call, p95", "ms"),
    "http_mean_ms": ("MCP over HTTP", "per call, mean", "ms"),
    "http_cold_p50_ms": ("MCP over HTTP", "cold start (connect + initialize + list), p50", "ms"),
    "same_output": ("all", "MCP answers equal the built-in's (1 = yes)", ""),
    "calls": ("all", "calls timed per way", ""),
}

SERVER = """
import os, sys
from pathlib import Path
from mcp.server.mcpserver import MCPServer

ROOT = Path(os.environ["BENCH_ROOT"])
server = MCPServer("bench-files")


@server.tool(description="Read a text file of the workspace.")
def read_file(path: str) -> str:
    return (ROOT / path).read_text(encoding="utf-8")


if len(sys.argv) > 2 and sys.argv[1] == "--http":
    server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
else:
    server.run()
"""


def _stats(prefix: str, timings: list[float]) -> dict[str, Any]:
    return {
        f"{prefix}_p50_ms": percentile(timings, 50),
        f"{prefix}_p95_ms": percentile(timings, 95),
        f"{prefix}_mean_ms": statistics.fmean(timings) if timings else None,
    }


async def _timed(call: Any, n: int, warmup: int) -> tuple[list[float], str]:
    output = ""
    for _ in range(warmup):
        output = await call()
    timings = []
    for _ in range(n):
        started = time.perf_counter()
        output = await call()
        timings.append((time.perf_counter() - started) * 1000)
    return timings, output


async def _through_manager(
    cfg: dict[str, Any], n: int, warmup: int, cold: int
) -> tuple[list[float], list[float], str]:
    from crewchief.mcp_config import McpServerConfig
    from crewchief.tools.mcp import McpManager

    servers = {"bench": McpServerConfig(**cfg)}
    starts = []
    for _ in range(cold):
        manager = McpManager(servers)
        started = time.perf_counter()
        tools, problems = await manager.tools()
        starts.append((time.perf_counter() - started) * 1000)
        await manager.close()
        if problems:
            raise SystemExit("; ".join(problems))
    manager = McpManager(servers)
    try:
        tools, problems = await manager.tools()
        if problems:
            raise SystemExit("; ".join(problems))
        (tool,) = tools

        async def call() -> str:
            result = await manager.call(tool, {"path": "sample.py"})
            if not result.ok:
                raise SystemExit(f"the MCP read failed: {result.output}")
            return result.output

        timings, output = await _timed(call, n, warmup)
    finally:
        await manager.close()
    return timings, starts, output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_http(script: Path, env: dict[str, str], port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, str(script), "--http", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    print(f"http server pid {process.pid}", file=sys.stderr)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the HTTP server exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the HTTP server did not listen within 30 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)


async def collect(n: int, warmup: int, cold: int) -> dict[str, Any]:
    from crewchief.tools.diff import run_tool_with_diff
    from crewchief.tools.workspace import Workspace

    with tempfile.TemporaryDirectory(prefix="crewchief-bench-mcp-") as tmp:
        root = Path(tmp) / "ws"
        root.mkdir()
        line = "def handler(request):  # a line of about sixty-four characters\n"
        (root / "sample.py").write_text(line * 64, encoding="utf-8")
        script = Path(tmp) / "bench_server.py"
        script.write_text(SERVER, encoding="utf-8")
        workspace = Workspace.open(root)

        async def builtin() -> str:
            outcome, _ = await asyncio.to_thread(
                run_tool_with_diff, workspace, "read_file", {"path": "sample.py"}
            )
            return outcome.output

        local, expected = await _timed(builtin, n, warmup)
        env = {"BENCH_ROOT": str(root)}
        stdio_cfg = {"command": sys.executable, "args": [str(script)], "env": env}
        stdio, stdio_starts, stdio_out = await _through_manager(stdio_cfg, n, warmup, cold)
        port = _free_port()
        process = _start_http(script, {**os.environ, **env}, port)
        try:
            url = {"url": f"http://127.0.0.1:{port}/mcp"}
            http, http_starts, http_out = await _through_manager(url, n, warmup, cold)
        finally:
            _stop(process)
    same = stdio_out == expected and http_out == expected
    return {
        **_stats("builtin", local),
        **_stats("stdio", stdio),
        "stdio_cold_p50_ms": percentile(stdio_starts, 50),
        **_stats("http", http),
        "http_cold_p50_ms": percentile(http_starts, 50),
        "same_output": int(same),
        "calls": n,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.mcp_tools", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--n", type=int, default=300, help="timed calls per way (300)")
    parser.add_argument("--warmup", type=int, default=30, help="untimed calls first (30)")
    parser.add_argument("--cold", type=int, default=5, help="cold starts timed per transport (5)")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    if min(args.n, args.cold) < 1 or args.warmup < 0:
        parser.error("--n and --cold must be at least 1, --warmup at least 0")
    values = asyncio.run(collect(args.n, args.warmup, args.cold))
    report = build_report(values, 0, TARGETS)
    report.pop("streams_connections_held", None)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        render_table("MCP tool calls against the built-in read_file", report, ROWS, TARGETS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
