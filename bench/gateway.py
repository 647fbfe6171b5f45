"""The OpenAI-compatible gateway's own cost: ``crewchief serve`` in front of a zero-latency upstream.

Run from the repository root::

    python -m bench.gateway [--n 2000] [--seconds 10] [--clients 50]
                            [--memory-requests 100000] [--litellm PATH] [--json]
    python -m bench.gateway --only direct,gateway --skip memory

The harness starts the fake upstream (``python -m bench.fake_openai --no-record``) and
``crewchief serve`` (a fresh temporary ``CREWCHIEF_HOME``, one API key, rate limit off,
every alias on ``openai:bench-model`` at the fake upstream) as processes of their own,
reads their CPU time and memory from ``/proc``, and stops them by PID at the end. The load
generator is ``bench._http``'s lean asyncio client in this process. With ``--litellm``,
LiteLLM's proxy in front of the same upstream is timed the same way, for comparison.
This is a report, not a test: it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import select
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

from bench import _gateway_load as gl
from bench._cluster import _child_setup, proc_cpu, proc_memory_mb
from bench._http import Connection, HttpError
from bench.server import (
    ServerProcess,
    build_report,
    free_port,
    raise_fd_limit,
    render_table,
    run_async,
)

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ("direct", "gateway", "throughput", "memory", "litellm")
CHAT_PATH = "/v1/chat/completions"
UPSTREAM_MODEL = "bench-model"
# key → (bound, target); keys not listed are informational.
TARGETS: dict[str, tuple[str, float]] = {
    "overhead_gateway_p50_ms": ("≤", 1.5),
    "overhead_gateway_p99_ms": ("≤", 3.0),
    "overhead_gateway_ttfb_p50_ms": ("≤", 2.0),
    "latency_direct_errors": ("≤", 0),
    "latency_gateway_errors": ("≤", 0),
    "throughput_requests_per_s": ("≥", 800.0),
    "throughput_errors": ("≤", 0),
    "memory_growth_mb": ("≤", 20.0),
    "memory_errors": ("≤", 0),
}


# -- the processes ------------------------------------------------------------------------------


class Child:
    """A started process: its CPU seconds and memory from ``/proc``; stopped by PID."""

    def __init__(self, popen: subprocess.Popen[bytes], log: Path):
        self.popen, self.log = popen, log
        self.port, self.key = 0, ""

    def cpu_seconds(self) -> float:
        cpu = proc_cpu(self.popen.pid)
        return cpu[1] if cpu is not None else 0.0

    def rss_mb(self) -> float:
        return proc_memory_mb(self.popen.pid).get("VmRSS", 0.0)

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:]

    def last_error(self) -> str:
        """The log's last line that names an error (or its last line), for a one-line report."""
        lines = [line.strip() for line in self.log_tail().splitlines() if line.strip()]
        named = [line for line in lines if "Error" in line or "error" in line]
        return ((named or lines or ["no output"])[-1])[:160]

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
        try:
            self.popen.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            self.popen.wait(timeout=5)


def start_upstream(root: Path, timeout: float = 30.0) -> tuple[Child, str]:
    """``python -m bench.fake_openai --no-record`` on a free port; the process, its base URL."""
    log = root / "upstream.log"
    with open(log, "wb") as err:
        popen = subprocess.Popen(
            [sys.executable, "-m", "bench.fake_openai", "--no-record"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            stdin=subprocess.DEVNULL,
            preexec_fn=_child_setup,
        )
    child = Child(popen, log)
    assert popen.stdout is not None
    ready, _, _ = select.select([popen.stdout], [], [], timeout)
    line = popen.stdout.readline().decode() if ready else ""
    if not line.startswith("listening on "):
        child.stop()
        raise RuntimeError(f"the fake upstream did not start: {line!r} {child.log_tail()}")
    return child, line.split()[-1]


def start_gateway(root: Path, name: str, base_url: str) -> ServerProcess:
    server = ServerProcess(root / name, f"openai:{UPSTREAM_MODEL}")
    server.env.update(
        CREWCHIEF_ALLOW_MODEL_REQUESTS="1",
        OPENAI_BASE_URL=base_url,
        OPENAI_API_KEY="sk-bench",
        CREWCHIEF_MEMORY="false",  # the gateway's own overhead: rewrite, cache, memory off
    )
    print(f"  starting crewchief serve ({name})", file=sys.stderr)
    try:
        server.start()
    except BaseException:
        server.stop()  # it may run without answering
        raise
    assert server.process is not None
    print(f"  gateway pid {server.process.pid} on port {server.port}", file=sys.stderr)
    return server


def litellm_problem(path: str | None) -> str | None:
    """Why LiteLLM cannot run, or None when ``path`` is an executable."""
    if not path:
        return "not run: no --litellm PATH (LiteLLM's proxy binary in a venv of its own)"
    if not os.access(path, os.X_OK) or Path(path).is_dir():
        return f"not run: {path} is not an executable"
    return None


def start_litellm(binary: str, root: Path, base_url: str, timeout: float = 180.0) -> Child:
    """LiteLLM's proxy (one process, no database) with the model ``auto`` on the upstream."""
    config, key = root / "litellm.yaml", f"sk-bench-{os.urandom(16).hex()}"
    config.write_text(
        "model_list:\n  - model_name: auto\n    litellm_params:\n"
        f"      model: openai/{UPSTREAM_MODEL}\n      api_base: {base_url}\n"
        f"      api_key: sk-bench\ngeneral_settings:\n  master_key: {key}\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "LITELLM_"))}
    env.update(LITELLM_LOCAL_MODEL_COST_MAP="True", LITELLM_LOG="ERROR", NO_DOCS="True")
    port, log = free_port(), root / "litellm.log"
    with open(log, "wb") as out:
        popen = subprocess.Popen(
            [binary, "--config", str(config), "--host", "127.0.0.1", "--port", str(port)],
            cwd=root,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_child_setup,
        )
    child = Child(popen, log)
    child.port, child.key = port, key
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"litellm exited: {child.last_error()}")
        if asyncio.run(_answers("127.0.0.1", port, "/health/liveliness")):
            print(f"  litellm pid {popen.pid} on port {port}", file=sys.stderr)
            return child
        time.sleep(0.25)
    child.stop()
    raise RuntimeError(f"litellm did not become ready: {child.last_error()}")


async def _answers(host: str, port: int, path: str) -> bool:
    conn = Connection(host, port)
    try:
        return (await conn.request("GET", path)).status == 200
    except (OSError, HttpError):
        return False
    finally:
        await conn.close()


@contextmanager
def stopping(thing: Any) -> Iterator[Any]:
    try:
        yield thing
    finally:
        thing.stop()


# -- the scenarios ------------------------------------------------------------------------------


def wanted(args: argparse.Namespace) -> set[str]:
    chosen = set(args.only or SCENARIOS) - set(args.skip or ())
    if chosen & {"gateway", "litellm"}:
        chosen.add("direct")  # the overheads are against it
    return chosen


def gateway_endpoint(server: ServerProcess) -> gl.Endpoint:
    return gl.Endpoint(
        "gateway", server.host, server.port, CHAT_PATH, "auto", server.auth, server.cpu_seconds
    )


def collect(args: argparse.Namespace) -> dict[str, Any]:
    """Run the chosen scenarios; return measurement name → value."""
    chosen, values = wanted(args), {}
    raise_fd_limit()
    with tempfile.TemporaryDirectory(prefix="crewchief-bench-gateway-") as tmp, ExitStack() as up:
        root = Path(tmp)
        upstream, base_url = start_upstream(root)
        up.enter_context(stopping(upstream))
        print(f"  fake upstream pid {upstream.popen.pid} at {base_url}", file=sys.stderr)
        port = int(base_url.rsplit(":", 1)[1].split("/")[0])
        direct = gl.Endpoint("direct", "127.0.0.1", port, CHAT_PATH, UPSTREAM_MODEL)
        with ExitStack() as stack:
            gateway = None
            if chosen & {"gateway", "throughput"}:
                gateway = stack.enter_context(stopping(start_gateway(root, "gateway", base_url)))
            endpoints = [direct] if "direct" in chosen else []
            if "gateway" in chosen and gateway is not None:
                endpoints.append(gateway_endpoint(gateway))
            cpu = upstream.cpu_seconds
            if endpoints:
                print(f"  latency: {args.warmup} warm-up + {args.n} rounds", file=sys.stderr)
                values.update(run_async(lambda: gl.latency(endpoints, args.n, args.warmup, cpu)))
            # LiteLLM in a pass of its own, beside direct requests of its own: its work
            # after each answer would otherwise run on the core the gateway is timed on.
            with ExitStack() as lite:  # LiteLLM runs only while it is timed
                if "litellm" in chosen and (
                    proxy := _litellm_endpoint(args, root, base_url, lite, values)
                ):
                    print(f"  latency beside LiteLLM: {args.n} rounds", file=sys.stderr)
                    pair = [direct, *proxy]
                    measured = run_async(lambda: gl.latency(pair, args.n, args.warmup, cpu))
                    values.update({k: v for k, v in measured.items() if "_litellm_" in k})
                    values.update(
                        {k.replace("_direct_", "_direct_beside_litellm_"): v
                         for k, v in measured.items() if "_direct_" in k}
                    )  # fmt: skip
            if "throughput" in chosen and gateway is not None:
                print(
                    f"  throughput: {args.clients} clients for {args.seconds:g} s", file=sys.stderr
                )
                meters = {"gateway": gateway.cpu_seconds, "upstream": upstream.cpu_seconds}
                target = gateway_endpoint(gateway)
                values.update(
                    run_async(lambda: gl.throughput(target, args.clients, args.seconds, meters))
                )
        if "memory" in chosen:
            with stopping(start_gateway(root, "memory", base_url)) as fresh:
                total = args.memory_requests
                print(f"  memory: {total:,} requests, {args.clients} clients", file=sys.stderr)

                def rss() -> float:
                    return fresh.memory_mb().get("VmRSS", 0.0)

                target = gateway_endpoint(fresh)
                values.update(run_async(lambda: gl.memory(target, args.clients, total, rss)))
    values.update(overheads(values))
    return values


def _litellm_endpoint(
    args: argparse.Namespace, root: Path, base_url: str, stack: ExitStack, values: dict[str, Any]
) -> list[gl.Endpoint]:
    problem = litellm_problem(args.litellm)
    if problem is None:
        try:
            child = stack.enter_context(stopping(start_litellm(args.litellm, root, base_url)))
        except (RuntimeError, OSError) as exc:
            problem = f"not run: {exc}"
    if problem is not None:
        print(f"  litellm: {problem}", file=sys.stderr)
        values["litellm_status"] = problem
        return []
    values["litellm_status"] = f"run: {args.litellm}"
    auth = {"Authorization": f"Bearer {child.key}"}
    return [
        gl.Endpoint("litellm", "127.0.0.1", child.port, CHAT_PATH, "auto", auth, child.cpu_seconds)
    ]


def overheads(values: dict[str, Any]) -> dict[str, Any]:
    """``overhead_<name>_*``: each proxy's percentiles minus those of the direct requests
    timed beside it."""
    out: dict[str, Any] = {}
    for name in ("gateway", "litellm"):
        for figure in ("p50", "p99", "ttfb_p50", "ttfb_p99"):
            key = f"latency_{name}_{figure}_ms"
            if key in values:
                direct = "direct_beside_litellm" if name == "litellm" else "direct"
                mine, base = values[key], values.get(f"latency_{direct}_{figure}_ms")
                ok = mine is not None and base is not None
                out[f"overhead_{name}_{figure}_ms"] = mine - base if ok else None
    return out


# -- the report ---------------------------------------------------------------------------------


def rows(args: argparse.Namespace) -> dict[str, tuple[str, str, str]]:
    """key → (scenario, label, unit), in table order."""
    out: dict[str, tuple[str, str, str]] = {}
    for name in ("direct", "gateway", "litellm"):
        p = f"latency_{name}"
        if name == "litellm":
            out["litellm_status"] = ("litellm", "LiteLLM proxy", "")
            beside = "latency_direct_beside_litellm"
            out[f"{beside}_p50_ms"] = (name, "direct request timed beside it, p50", "ms")
            out[f"{beside}_ttfb_p50_ms"] = (name, "direct first content chunk beside it, p50", "ms")
        out[f"{p}_p50_ms"] = (name, "non-streaming: request → last byte, p50", "ms")
        out[f"{p}_p99_ms"] = (name, "non-streaming: request → last byte, p99", "ms")
        out[f"{p}_ttfb_p50_ms"] = (name, "streaming: request → first content chunk, p50", "ms")
        out[f"{p}_ttfb_p99_ms"] = (name, "streaming: request → first content chunk, p99", "ms")
        out[f"{p}_stream_p50_ms"] = (name, "streaming: request → [DONE], p50", "ms")
        if name != "direct":  # the upstream serves every endpoint: see throughput
            out[f"{p}_cpu_ms_per_request"] = (name, "its CPU per request (sequential)", "ms")
        out[f"{p}_requests"] = (name, "requests timed (half of them streamed)", "")
        out[f"{p}_errors"] = (name, "errors", "")
        if name != "direct":
            scenario = f"{name} overhead"
            out[f"overhead_{name}_p50_ms"] = (scenario, f"{name} − direct, non-streaming p50", "ms")
            out[f"overhead_{name}_p99_ms"] = (scenario, f"{name} − direct, non-streaming p99", "ms")
            out[f"overhead_{name}_ttfb_p50_ms"] = (scenario, f"{name} − direct, TTFB p50", "ms")
            out[f"overhead_{name}_ttfb_p99_ms"] = (scenario, f"{name} − direct, TTFB p99", "ms")
    out["latency_host_steal_pct"] = ("latency", "host CPU taken by the hypervisor", "%")
    out["latency_host_other_pct"] = ("latency", "host CPU used outside the run", "%")
    t = "throughput"
    out[f"{t}_requests_per_s"] = (t, f"{args.clients} clients, non-streaming: requests/s", "/s")
    out[f"{t}_gateway_cpu_ms_per_request"] = (t, "gateway CPU per request", "ms")
    out[f"{t}_upstream_cpu_ms_per_request"] = (t, "fake upstream CPU per request", "ms")
    out[f"{t}_client_cpu_ms_per_request"] = (t, "load generator CPU per request", "ms")
    out[f"{t}_p50_ms"] = (t, "request → last byte under load, p50", "ms")
    out[f"{t}_p99_ms"] = (t, "request → last byte under load, p99", "ms")
    out[f"{t}_requests"] = (t, "requests answered", "")
    out[f"{t}_errors"] = (t, "errors", "")
    out[f"{t}_host_steal_pct"] = (t, "host CPU taken by the hypervisor", "%")
    out[f"{t}_host_other_pct"] = (t, "host CPU used outside the run", "%")
    first = max(1, args.memory_requests // 10)
    m = "memory"
    out[f"{m}_rss_start_mb"] = (m, "fresh gateway RSS, ready", "MB")
    out[f"{m}_rss_first_mb"] = (m, f"RSS after {first:,} requests", "MB")
    out[f"{m}_rss_last_mb"] = (m, f"RSS after {args.memory_requests:,} requests", "MB")
    out[f"{m}_growth_mb"] = (m, f"growth from {first:,} to {args.memory_requests:,}", "MB")
    out[f"{m}_requests_per_s"] = (m, "requests/s (every 10th streamed)", "/s")
    out[f"{m}_requests"] = (m, "requests answered", "")
    out[f"{m}_errors"] = (m, "errors", "")
    out["host_cpus"] = ("machine", "CPUs (gateway, upstream and load share them)", "")
    return out


def print_table(report: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    """Print the report as a rich table, then the overall line."""
    chosen = wanted(args)
    parts = [f"{args.n} sequential rounds"] if "direct" in chosen else []
    if "throughput" in chosen:
        parts.append(f"{args.clients} clients × {args.seconds:g} s")
    if "memory" in chosen:
        parts.append(f"{args.memory_requests:,} requests for memory")
    title = f"OpenAI gateway vs direct, zero-latency fake upstream ({', '.join(parts)})"
    render_table(title, report, rows(args), TARGETS, width=130)


def _scenarios(text: str) -> list[str]:
    names = [s.strip() for s in text.split(",") if s.strip()]
    unknown = set(names) - set(SCENARIOS)
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown scenario {sorted(unknown)}; see {SCENARIOS}")
    return names


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, and print the table (or JSON). Always returns 0."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.gateway", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--n", type=int, default=2000, help="sequential rounds (2000)")
    parser.add_argument("--warmup", type=int, default=200, help="untimed rounds first (200)")
    parser.add_argument("--clients", type=int, default=50, help="concurrent clients (50)")
    parser.add_argument("--seconds", type=float, default=10.0, help="throughput window (10)")
    parser.add_argument(
        "--memory-requests", type=int, default=100_000, help="memory scenario requests (100000)"
    )
    parser.add_argument(
        "--litellm",
        default=os.environ.get("CREWCHIEF_BENCH_LITELLM"),
        help="LiteLLM's proxy executable in its own venv ($CREWCHIEF_BENCH_LITELLM)",
    )
    choices = ", ".join(SCENARIOS)
    parser.add_argument("--only", type=_scenarios, help=f"comma-separated scenarios ({choices})")
    parser.add_argument("--skip", type=_scenarios, help="comma-separated scenarios to leave out")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    if min(args.n, args.clients, args.memory_requests) < 1 or args.warmup < 0 or args.seconds <= 0:
        parser.error("--n, --clients, --memory-requests must be ≥ 1, --seconds > 0, --warmup ≥ 0")
    values = collect(args)
    values["host_cpus"] = os.cpu_count() or 0
    report = build_report(values, 0, TARGETS)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
