"""The REST service under load: a real ``crewchief serve`` on loopback, driven over HTTP/1.1.

Run from the repository root::

    python -m bench.server [--n 200] [--clients 20] [--seconds 10] [--streams 500] [--json]
    python -m bench.server --only latency|throughput|streams

The harness starts ``crewchief serve`` itself (a fresh temporary ``CREWCHIEF_HOME``,
one API key, rate limit off, a free loopback port), reads the server process's CPU
time and memory from ``/proc``, and stops it by PID at the end. The load generator
is a small asyncio client (``bench._http``), so it leaves the server its core.
This is a report, not a test: it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import _scenarios as scenarios

# key → (bound, target); keys not listed are informational.
TARGETS: dict[str, tuple[str, float]] = {
    "latency_first_event_p50_ms": ("≤", 20.0),
    "latency_terminal_p50_ms": ("≤", 50.0),
    "latency_errors": ("≤", 0),
    "throughput_ops_per_s": ("≥", 150.0),
    "throughput_server_cpu_ms_per_op": ("≤", 7.0),
    "throughput_errors": ("≤", 0),
    "streams_errors": ("≤", 0),
    "streams_event_latency_p95_ms": ("≤", 100.0),
}
SCENARIOS = ("latency", "throughput", "streams")
TOKEN_DELAY = 0.02  # seconds between streamed chunks in the streams scenario


class ServerProcess:
    """``crewchief serve`` in a subprocess: its URL parts, API key, PID, CPU and memory."""

    def __init__(self, home: Path, model: str):
        self.home, self.model = home, model
        home.mkdir(parents=True)
        (home / "none.toml").write_text("")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CREWCHIEF_")}
        self.env.update(
            CREWCHIEF_HOME=str(home),
            CREWCHIEF_CONFIG=str(home / "none.toml"),
            CREWCHIEF_MODEL=model,
            CREWCHIEF_ALLOW_MODEL_REQUESTS="0",
            CREWCHIEF_API_RATE_LIMIT="0",
        )
        self.host, self.port = "127.0.0.1", free_port()
        self.key = ""
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def start(self, timeout: float = 60.0) -> None:
        created = subprocess.run(
            [sys.executable, "-m", "crewchief.cli", "keys", "create", "--name", "bench", "--json"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            stdin=subprocess.DEVNULL,
        )
        self.key = json.loads(created.stdout)["key"]
        log = open(self.home / "server.log", "wb")  # noqa: SIM115 - lives as long as the process
        cmd = [sys.executable, "-m", "crewchief.cli", "serve", "--host", self.host]
        self.process = subprocess.Popen(
            [*cmd, "--port", str(self.port)],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=raise_fd_limit,
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"crewchief serve exited: {self.log_tail()}")
            if asyncio.run(scenarios.ready(self.host, self.port)):
                return
            time.sleep(0.1)
        raise RuntimeError(f"crewchief serve did not become ready: {self.log_tail()}")

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def log_tail(self) -> str:
        return (self.home / "server.log").read_text(errors="replace")[-2000:]

    def cpu_seconds(self) -> float:
        """utime + stime of the server process (all its threads), in seconds."""
        assert self.process is not None
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state is fields[0]
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_mb(self) -> dict[str, float]:
        """``VmRSS`` (now) and ``VmHWM`` (peak) of the server process, in MB."""
        assert self.process is not None
        out = {}
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                out[name] = int(value.split()[0]) / 1024
        return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def raise_fd_limit(want: int = 65536) -> None:
    """Raise this process's soft open-file limit towards ``want`` (up to the hard limit)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


@contextmanager
def running_server(root: Path, name: str, model: str) -> Iterator[ServerProcess]:
    server = ServerProcess(root / name, model)
    try:
        print(f"  starting crewchief serve ({model})", file=sys.stderr)
        server.start()
        assert server.process is not None
        print(f"  server pid {server.process.pid} on port {server.port}", file=sys.stderr)
        yield server
    finally:
        server.stop()


def run_async(main: Callable[[], Any]) -> Any:
    """Run a coroutine function on uvloop when it is installed (a leaner client), else asyncio."""
    try:
        import uvloop

        factory = uvloop.new_event_loop
    except ImportError:  # pragma: no cover - uvloop comes with uvicorn[standard]
        factory = None
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main())


def hold_seconds(streams: int) -> float:
    """How long each streams-scenario model call waits before its first token.

    Long enough for all operations to be created and their streams attached
    before the first one starts streaming, so they are all held at once.
    """
    return max(2.0, streams / 50)


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen scenarios; return measurement name → value."""
    values: dict[str, Any] = {}
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="crewchief-bench-server-") as tmp:
        root = Path(tmp)
        if args.only in (None, "latency", "throughput"):
            with running_server(root, "fast", "fake:default") as server:
                if args.only in (None, "latency"):
                    print(
                        f"  latency: {args.warmup} warm-up + {args.n} operations", file=sys.stderr
                    )
                    values.update(run_async(lambda: scenarios.latency(server, args.n, args.warmup)))
                if args.only in (None, "throughput"):
                    print(
                        f"  throughput: {args.clients} clients for {args.seconds:g} s",
                        file=sys.stderr,
                    )
                    values.update(
                        run_async(lambda: scenarios.throughput(server, args.clients, args.seconds))
                    )
        if args.only in (None, "streams"):
            hold = hold_seconds(args.streams)
            model = f"fake:default?delay={hold:g}&token_delay={TOKEN_DELAY:g}"
            with running_server(root, "streams", model) as server:
                print(f"  streams: {args.streams} concurrent SSE clients", file=sys.stderr)
                values.update(run_async(lambda: scenarios.streams(server, args.streams, hold)))
    return values


def build_report(
    values: dict[str, Any], streams: int, targets: dict[str, tuple[str, float]] | None = None
) -> dict[str, dict[str, Any]]:
    """``{key: {"value", "target", "pass"}}`` plus ``all_targets_met`` (``targets``: this
    module's ``TARGETS`` unless given)."""
    targets = {
        **(TARGETS if targets is None else targets),
        "streams_connections_held": ("≥", streams),
    }
    report: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        bound, target = targets.get(key, (None, None))
        if target is None:
            ok = None
        elif value is None:
            ok = False
        else:
            ok = value <= target if bound == "≤" else value >= target
        shown = round(value, 3) if isinstance(value, float) else value
        report[key] = {"value": shown, "target": target, "pass": ok}
    met = all(m["pass"] is not False for m in report.values())
    report["all_targets_met"] = {"value": met, "target": True, "pass": met}
    return report


# key → (scenario, label, unit); the table shows the rows in this order.
ROWS: dict[str, tuple[str, str, str]] = {
    "latency_first_event_p50_ms": ("latency", "POST → first SSE event, p50", "ms"),
    "latency_first_event_p95_ms": ("latency", "POST → first SSE event, p95", "ms"),
    "latency_terminal_p50_ms": ("latency", "POST → operation.completed, p50", "ms"),
    "latency_terminal_p95_ms": ("latency", "POST → operation.completed, p95", "ms"),
    "latency_server_cpu_ms_per_op": ("latency", "server CPU per operation (sequential)", "ms"),
    "latency_operations": ("latency", "operations timed", ""),
    "latency_errors": ("latency", "errors", ""),
    "throughput_ops_per_s": ("throughput", "operations completed per second", "/s"),
    "throughput_server_cpu_ms_per_op": ("throughput", "server CPU per operation", "ms"),
    "throughput_terminal_p50_ms": ("throughput", "POST → operation.completed, p50", "ms"),
    "throughput_terminal_p95_ms": ("throughput", "POST → operation.completed, p95", "ms"),
    "throughput_client_cpu_ms_per_op": ("throughput", "load generator CPU per operation", "ms"),
    "throughput_operations": ("throughput", "operations completed", ""),
    "throughput_errors": ("throughput", "errors", ""),
    "throughput_host_steal_pct": ("throughput", "host CPU taken by the hypervisor (steal)", "%"),
    "streams_connections_held": ("streams", "SSE connections held at once (max)", ""),
    "streams_event_latency_p50_ms": ("streams", "event latency (receive − created_at), p50", "ms"),
    "streams_event_latency_p95_ms": ("streams", "event latency, p95", "ms"),
    "streams_stored_event_latency_p95_ms": ("streams", "  stored events only, p95", "ms"),
    "streams_delta_latency_p95_ms": ("streams", "  model.delta events only, p95", "ms"),
    "streams_events": ("streams", "events received (live + replayed)", ""),
    "streams_events_per_s": ("streams", "events per second", "/s"),
    "streams_server_cpu_s": ("streams", "server CPU during the scenario", "s"),
    "streams_server_rss_mb": ("streams", "server RSS at the end", "MB"),
    "streams_server_peak_rss_mb": ("streams", "server peak RSS (VmHWM)", "MB"),
    "streams_errors": ("streams", "errors", ""),
}


TWO_DECIMALS = ("ms", "s", "MB", "×")  # units shown with two decimals, others with one


def cell(value: Any, unit: str, digits: int | None = None) -> str:
    """A report value as a table shows it: ``n/a`` for None, text as it is, integers with
    thousands separators, numbers with ``digits`` decimals (default: two for
    :data:`TWO_DECIMALS` units and for ratios without a unit, else one) and the unit."""
    if value is None:
        return "n/a"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return f"{value:,}"
    if digits is None:
        digits = 2 if unit in TWO_DECIMALS or not unit else 1
    return f"{value:,.{digits}f}" + (f" {unit}" if unit else "")


def render_table(
    title: str,
    report: dict[str, dict[str, Any]],
    rows: dict[str, tuple[str, str, str]],
    targets: dict[str, tuple[str, Any]],
    show: Callable[[Any, str], str] = cell,
    width: int = 110,
) -> None:
    """Print a harness's report as a rich table (``rows``: key → scenario, label, unit; a
    key missing from the report is left out; ``show`` formats a value), then the overall
    line."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    for column in ("scenario", "measurement", "value", "target", "result"):
        table.add_column(column, justify="right" if column == "value" else "left")
    for key, (scenario, label, unit) in rows.items():
        if key not in report:
            continue
        m = report[key]
        bound = targets.get(key, ("≥", None))[0]
        target = "" if m["target"] is None else f"{bound} {m['target']:g} {unit}".rstrip()
        result = "" if m["pass"] is None else "PASS" if m["pass"] else "FAIL"
        table.add_row(scenario, label, show(m["value"], unit), target, result)
    console = Console()
    console.width = max(console.width, width)  # pipes default to 80 columns, which wraps rows
    console.print(table)
    console.print(f"all targets met: {'yes' if report['all_targets_met']['value'] else 'NO'}")


def print_table(report: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    """Print the report as a rich table, then the overall line."""
    title = (
        f"crewchief serve over HTTP ({args.n} sequential ops, {args.clients} clients × "
        f"{args.seconds:g} s, {args.streams} SSE streams, fake model)"
    )
    render_table(title, report, ROWS, TARGETS)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, and print the table (or JSON). Always returns 0."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.server", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--n", type=int, default=200, help="sequential operations (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed operations first (20)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients (default 20)")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput window (10)")
    parser.add_argument("--streams", type=int, default=500, help="concurrent SSE clients (500)")
    parser.add_argument("--only", choices=SCENARIOS, help="run one scenario")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    if min(args.n, args.clients, args.streams) < 1 or args.warmup < 0 or args.seconds <= 0:
        parser.error("--n, --clients and --streams must be ≥ 1, --seconds > 0, --warmup ≥ 0")
    report = build_report(collect(args), args.streams)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
