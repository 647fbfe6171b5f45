"""``python -m bench.mcp_tools``: the MCP client's per-call overhead against the built-in
read_file, over stdio and streamable HTTP; the figures' sanity is checked, never the speed."""

from __future__ import annotations

import re

import pytest

from bench import mcp_tools
from tests.bench._run import run_harness, running

pytestmark = pytest.mark.slow  # starts MCP servers: a stdio child and an HTTP process


def test_a_tiny_run_reports_every_row_and_stops_its_server() -> None:
    report, stderr = run_harness("bench.mcp_tools", "--n", "5", "--warmup", "1", "--cold", "1")
    assert set(report) == set(mcp_tools.ROWS) | {"all_targets_met"}
    assert report["same_output"]["value"] == 1 and report["calls"]["value"] == 5
    for way in ("builtin", "stdio", "http"):
        assert 0 < report[f"{way}_p50_ms"]["value"] <= report[f"{way}_p95_ms"]["value"], way
    assert report["stdio_cold_p50_ms"]["value"] > 0 and report["http_cold_p50_ms"]["value"] > 0
    (pid,) = [int(p) for p in re.findall(r"http server pid (\d+)", stderr)]
    assert not running(pid), f"the HTTP server {pid} still runs"
