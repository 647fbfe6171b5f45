"""What budget enforcement costs: per gateway request, per reservation, per operation.

Run from the repository root::

    python -m bench.budgets [--n 400] [--iterations 5000] [--pg-n 500] [--ops 60] [--json]

Four parts, each timed with ``time.perf_counter``:

* **gateway, end to end** (embedded mode): ``crewchief serve`` (SQLite, a temporary home)
  in front of ``python -m bench.fake_openai``, the model ``up:cheap`` priced in ``[prices]``.
  Two keys take turns sending the same requests: (a) one without a budget, (b) one with a
  daily and a monthly budget too large to refuse. Both pay the plan lookup; (b) also
  reserves and settles. (b) − (a) is the overhead, within the noise of a 2-3 ms request.
* **direct** (embedded mode, in this process): the pieces on their own, many times:
  ``Budgets.limits`` (cached), the token count of a typical and of a long request,
  ``reserve`` + ``Hold.settle`` on ``LocalCounters``, and the gateway's whole enforcement
  path (``spend.admit``, ``spend.reserve``, ``spend.settle`` on a new ``Trace``) for a key
  with a budget and one without, in alternating blocks. The ≤ 0.3 ms target is checked here.
* **scaled**: ``reserve`` + ``settle`` on ``SqlCounters`` in a temporary PostgreSQL database
  (made and dropped on ``$CREWCHIEF_BENCH_PG``, default the local server), one at a time and
  from 8 tasks on one budget, next to one plain write transaction (a commit's cost here).
* **per operation**: ``Crewchief(settings).run`` on the priced fake ``fake:default?tasks=5``
  (fast path; plan + 5 tasks) for an owner with a budget and one without, interleaved, with
  the model calls per operation (each reserves and settles once).

This is a report, not a test: it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import inspect
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, NamedTuple

from bench import _gateway_load as gl
from bench._scenarios import percentile
from bench.gateway import start_upstream, stopping
from bench.operations import time_interleaved
from bench.server import ServerProcess, build_report, cell, render_table, run_async
from crewchief.client.facade import Crewchief
from crewchief.config import Settings, load_settings
from crewchief.db.budgets import BudgetRow, put_budget
from crewchief.db.keys import create_key
from crewchief.db.migrate import app_store
from crewchief.db.writer import Writer
from crewchief.gateway import spend
from crewchief.gateway.context import message_tokens
from crewchief.gateway.request import ChatRequest
from crewchief.gateway.roles import RoleChoice
from crewchief.gateway.targets import Route, Target
from crewchief.gateway.trace import Trace
from crewchief.models.pricing import prices_for
from crewchief.runtime.budgets import Budgets

BIG = 1_000_000.0  # dollars: a budget no run here comes near
GATEWAY_PRICE = {"input": 1.25, "output": 10.0}  # gpt-5's, per million tokens
FAKE = "fake:default?tasks=5"
PG_ADMIN = os.environ.get("CREWCHIEF_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CONCURRENCY = 8
PAYERS = ("free", "budget")  # without a budget, with one
# A typical chat request: a short system prompt and a question with some context.
MESSAGES = [
    {"role": "system", "content": "You are a careful senior Python reviewer. Answer briefly, "
     "cite the lines you mean, and say when you are unsure rather than guessing."},
    {"role": "user", "content": "Here is a function that retries HTTP calls:\n\n"
     + "def fetch(url, tries=3):\n    for i in range(tries):\n        try:\n"
     "            return httpx.get(url, timeout=5).json()\n        except httpx.HTTPError:\n"
     "            time.sleep(2 ** i)\n    raise RuntimeError(url)\n\n" * 3
     + "Is the back-off right, and what happens on the last failure?"},
]  # fmt: skip
LONG = [MESSAGES[0], {"role": "user", "content": MESSAGES[1]["content"] * 20}]
TARGETS: dict[str, tuple[str, float]] = {
    "direct_gateway_budget_p50_ms": ("≤", 0.3),
    "gateway_errors": ("≤", 0),
}


def stats(prefix: str, ms: list[float], *qs: int) -> dict[str, float | None]:
    return {f"{prefix}_p{q}_ms": percentile(ms, q) for q in qs or (50, 95, 99)}


def overheads(values: dict[str, Any]) -> dict[str, float]:
    """``*_overhead_*``: each figure with a budget minus the same figure without one."""
    out = {}
    for key, value in values.items():
        free = values.get(key.replace("_budget_", "_free_"))
        if "_budget_" in key and value is not None and free is not None:
            out[key.replace("_budget_", "_overhead_")] = value - free
    return out


async def timed(run: Callable[[], Any], n: int, warmup: int = 50) -> list[float]:
    """``run()`` (awaited when it is a coroutine) ``warmup`` times, then ``n`` times timed;
    ms each."""
    out = []
    for i in range(warmup + n):
        started = time.perf_counter()
        if inspect.isawaitable(result := run()):
            await result
        if i >= warmup:
            out.append((time.perf_counter() - started) * 1000)
    return out


def tokens(messages: list[dict[str, Any]]) -> int:
    return sum(message_tokens(m) for m in messages)


def settings_for(home: Path, **overrides: Any) -> Settings:
    home.mkdir(parents=True, exist_ok=True)
    (home / "none.toml").write_text("")  # so a ./crewchief.toml cannot change the set-up
    env = {"CREWCHIEF_HOME": str(home), "CREWCHIEF_MODEL": FAKE}
    return load_settings(config_file=home / "none.toml", env=env, **overrides)


class Payers(NamedTuple):
    budgets: Budgets
    store: Writer
    key: str  # a key whose own budget is BIG a day and a month
    free: str  # a key without a budget


@asynccontextmanager
async def payers(settings: Settings, shared: bool) -> AsyncIterator[Payers]:
    """The app database, migrated, with the two keys (``shared``: on ``SqlCounters``)."""
    async with app_store(settings.resolved_database_url) as store:
        info, _ = await create_key(store, name="budgeted", owner="budgeted")
        await put_budget(store, BudgetRow("key", info.id, BIG, BIG, set_by="operator"))
        free, _ = await create_key(store, name="free", owner="free")
        yield Payers(Budgets(settings, store, shared=shared), store, info.id, free.id)


async def direct(home: Path, n: int) -> dict[str, Any]:
    """Each enforcement piece ``n`` times on ``LocalCounters``."""
    settings = settings_for(home, prices={"up:cheap": GATEWAY_PRICE})
    prices = prices_for(settings)
    target = Target("up:cheap", "cheap", "http://127.0.0.1:9/v1", None)
    values: dict[str, Any] = {"direct_tokens_count": tokens(MESSAGES)}
    values["direct_long_tokens_count"] = tokens(LONG)
    usd = prices.estimate("up:cheap", tokens(MESSAGES), settings.max_output_tokens)
    async with payers(settings, shared=False) as p:
        limits = functools.partial(p.budgets.limits, "budgeted", p.key)
        values.update(stats("direct_limits", await timed(limits, n)))
        values.update(stats("direct_tokens", await timed(lambda: tokens(MESSAGES), n)))
        values.update(stats("direct_long_tokens", await timed(lambda: tokens(LONG), n // 10), 50))

        async def reserve_settle() -> None:
            hold = await p.budgets.reserve("budgeted", p.key, usd)
            assert hold is not None, "the key's budget did not limit the call"
            await hold.settle(usd / 10)

        values.update(stats("direct_reserve_settle", await timed(reserve_settle, n)))

        async def gateway_path(owner: str, key_id: str) -> None:
            body = {"model": "up:cheap", "messages": MESSAGES}
            request = ChatRequest(body, "up:cheap", stream=False, include_usage=False)
            route = Route([target], "bench")
            trace = Trace(RoleChoice("general", "bench"), route, owner=owner, api_key_id=key_id)
            await spend.admit(p.budgets, request, trace)  # as GatewayService does, in order
            await spend.reserve(p.budgets, prices, settings, trace, target)
            await spend.settle(trace, usd / 10)

        paths = {"budget": ("budgeted", p.key), "free": ("free", p.free)}
        times: dict[str, list[float]] = {name: [] for name in paths}
        for _ in range(10):  # the two paths take turns, in blocks
            for name, payer in paths.items():
                times[name] += await timed(functools.partial(gateway_path, *payer), n // 10, 5)
    values.update(stats("direct_gateway_budget", times["budget"]))
    return {**values, **stats("direct_gateway_free", times["free"], 50)}


async def scaled(url: str, home: Path, n: int) -> dict[str, Any]:
    """``reserve`` + ``settle`` on ``SqlCounters``: ``n`` in turn, then ``n`` from 8 tasks."""
    async with payers(settings_for(home, database_url=url), shared=True) as p:
        assert type(p.budgets.counters).__name__ == "SqlCounters"
        sql = "UPDATE api_keys SET name = name WHERE id = :k"
        commit = functools.partial(p.store.run, lambda tx: tx.execute(sql, {"k": p.key}))

        async def reserve_settle() -> None:
            hold = await p.budgets.reserve("budgeted", p.key, 0.01)
            assert hold is not None
            await hold.settle(0.001)

        values = stats("pg_commit", await timed(commit, n // 2, 20), 50)
        values.update(stats("pg_sequential", await timed(reserve_settle, n, 20), 50, 95))
        started = time.perf_counter()
        each = await asyncio.gather(
            *(timed(reserve_settle, max(1, n // CONCURRENCY), 2) for _ in range(CONCURRENCY))
        )
        together = [ms for one in each for ms in one]
        values["pg_concurrent_per_s"] = len(together) / (time.perf_counter() - started)
        values.update(stats("pg_concurrent", together, 50, 95))
        status = await p.budgets.status("budgeted", p.key)
        values["pg_held_after_usd"] = next(s["held_usd"] for s in status if s["period"] == "day")
    return values


def run_scaled(root: Path, n: int) -> dict[str, Any]:
    try:
        import psycopg

        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except Exception as exc:  # noqa: BLE001 - no PostgreSQL: said in the table
        print(f"  scaled: PostgreSQL not reachable: {exc}", file=sys.stderr)
        return {"pg_status": f"not run: PostgreSQL not reachable at {PG_ADMIN}"}
    name = f"crewchief_bench_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        print(f"  scaled: {n} reservations in turn, {n} from {CONCURRENCY} tasks", file=sys.stderr)
        url = f"{PG_ADMIN.rsplit('/', 1)[0]}/{name}"
        return {"pg_status": "run", **asyncio.run(scaled(url, root / "pg", n))}
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def operations(home: Path, n: int, warmup: int) -> dict[str, Any]:
    """Fast path and plan+5 for an owner with a budget and one without, interleaved."""
    settings = settings_for(home, prices={FAKE: {"input": 1.0, "output": 2.0}})
    values: dict[str, Any] = {}
    async with Crewchief(settings) as cc:
        await cc.set_budget("owner", "bench", daily_usd=BIG, monthly_usd=BIG)
        for scenario, request, route, tasks in (
            ("fast", "What is a monad?", "fast", 0),
            ("plan5", "Add a docstring to every public function of the parser", "plan", 5),
        ):
            print(f"  {scenario}: {warmup} warm-up + {n} runs each, interleaved", file=sys.stderr)
            calls: list[tuple[int, int]] = []  # (calls, prompt tokens) of each run

            def check(r: Any, tasks: int = tasks, calls: list[tuple[int, int]] = calls) -> None:
                if r.status != "completed" or len(r.tasks) != tasks or r.cost_usd <= 0:
                    raise RuntimeError(f"a benchmark operation went wrong: {str(r)[:300]}")
                calls.append((sum(m.calls for m in r.usage_by_model), r.usage.input))

            runs = {
                name: (functools.partial(cc.run, request, route=route, owner=owner), check)
                for name, owner in (("budget", "bench"), ("free", "nobudget"))
            }
            times = await time_interleaved(runs, n, warmup)
            values.update(stats(f"op_{scenario}_free", times["free"], 50))
            values.update(stats(f"op_{scenario}_budget", times["budget"], 50))
            values[f"op_{scenario}_calls"], values[f"op_{scenario}_prompt_tokens"] = max(calls)
    return values


CONFIG = """[providers.up]\ntype = "openai"\nbase_url = "{base_url}"\napi_key_env = "UP_KEY"
[prices."up:cheap"]\ninput = {input}\noutput = {output}
[gateway]\nrewrite = false\n[knowledge]\nmemory = false\nprofiles = false\n"""


def gateway(root: Path, n: int, warmup: int) -> dict[str, Any]:
    """(a) and (b) through ``crewchief serve``, taking turns, ``n`` rounds."""
    upstream, base_url = start_upstream(root)
    with stopping(upstream):
        print(f"  fake upstream pid {upstream.popen.pid} at {base_url}", file=sys.stderr)
        server = ServerProcess(root / "gateway", FAKE)
        (server.home / "none.toml").write_text(CONFIG.format(base_url=base_url, **GATEWAY_PRICE))
        server.env.update(CREWCHIEF_ALLOW_MODEL_REQUESTS="1", UP_KEY="sk-bench")
        made = subprocess.run(
            [sys.executable, "-m", "crewchief.cli", "keys", "create", "--name", "budgeted",
             "--daily-usd", str(BIG), "--monthly-usd", str(BIG), "--json"],
            env=server.env, capture_output=True, text=True, timeout=60, check=True,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
        with stopping(server):
            server.start()
            assert server.process is not None
            print(f"  gateway pid {server.process.pid} on port {server.port}", file=sys.stderr)
            print(f"  gateway: {warmup} warm-up + {n} rounds", file=sys.stderr)
            endpoints = [
                gl.Endpoint(name, server.host, server.port, "/v1/chat/completions", "up:cheap",
                            {"Authorization": f"Bearer {key}"})
                for name, key in zip(PAYERS, (server.key, json.loads(made.stdout)["key"]),
                                     strict=True)
            ]  # fmt: skip
            measured = run_async(lambda: gl.latency(endpoints, n, warmup, upstream.cpu_seconds))
    values = {
        f"gateway_{k[8:]}": v
        for k, v in measured.items()
        if k.endswith("p50_ms") and "stream" not in k
    }
    for figure in ("requests", "errors"):
        values[f"gateway_{figure}"] = sum(measured[f"latency_{p}_{figure}"] for p in PAYERS)
    return values


def _rows() -> dict[str, tuple[str, str, str]]:
    """key → (scenario, label, unit), in table order."""
    g, d, s = "gateway (embedded)", "direct (embedded)", "scaled (PostgreSQL)"
    out = {}
    for key, label in (("free", "(a) key without budget"), ("budget", "(b) key with budget")):
        out[f"gateway_{key}_p50_ms"] = (g, f"{label}: request → last byte, p50", "ms")
        out[f"gateway_{key}_ttfb_p50_ms"] = (g, "  streamed: request → first content, p50", "ms")
    out["gateway_overhead_p50_ms"] = (g, "(b) − (a), p50 (noisy)", "ms")
    out["gateway_overhead_ttfb_p50_ms"] = (g, "(b) − (a), streamed first content, p50", "ms")
    out["gateway_requests"] = (g, "requests timed (half streamed)", "")
    out["gateway_errors"] = (g, "errors", "")
    for key, label in (
        ("limits", "Budgets.limits (cached)"),
        ("tokens", "token count of a typical request"),
        ("reserve_settle", "reserve + settle on LocalCounters (day + month)"),
        ("gateway_budget", "gateway admit+reserve+settle, key with budget"),
    ):
        for q in (50, 95, 99):
            out[f"direct_{key}_p{q}_ms"] = (d, f"{label}, p{q}" if q == 50 else f"  p{q}", "ms")
        if key == "tokens":
            out["direct_tokens_count"] = (d, "  tokens in that request", "")
            out["direct_long_tokens_p50_ms"] = (d, "token count of a long request, p50", "ms")
            out["direct_long_tokens_count"] = (d, "  tokens in that request", "")
    out["direct_gateway_free_p50_ms"] = (d, "the same, key without budget, p50", "ms")
    out["direct_gateway_overhead_p50_ms"] = (d, "with − without budget, p50", "ms")
    out["pg_status"] = (s, "PostgreSQL", "")
    out["pg_commit_p50_ms"] = (s, "baseline: one write transaction (a commit), p50", "ms")
    out["pg_sequential_p50_ms"] = (s, "reserve + settle on SqlCounters, one at a time, p50", "ms")
    out["pg_sequential_p95_ms"] = (s, "  p95", "ms")
    out["pg_concurrent_p50_ms"] = (s, f"the same from {CONCURRENCY} tasks, one budget, p50", "ms")
    out["pg_concurrent_p95_ms"] = (s, "  p95", "ms")
    out["pg_concurrent_per_s"] = (s, "  reservations settled per second", "/s")
    out["pg_held_after_usd"] = (s, "  still held after every settlement", "$")
    for scenario, label in (("fast", "fast path"), ("plan5", "plan+5")):
        o, p = f"per operation: {label}", f"op_{scenario}"
        out[f"{p}_free_p50_ms"] = (o, "owner without budget, p50", "ms")
        out[f"{p}_budget_p50_ms"] = (o, "owner with day + month budget, p50", "ms")
        out[f"{p}_overhead_p50_ms"] = (o, "with − without, p50 (noisy)", "ms")
        out[f"{p}_calls"] = (o, "model calls per operation (each reserves + settles)", "")
        out[f"{p}_prompt_tokens"] = (o, "  prompt tokens of those calls (characters / 4)", "")
        out[f"{p}_overhead_per_call_ms"] = (o, "  difference per call", "ms")
    return out


ROWS = _rows()


def show(value: Any, unit: str) -> str:
    """Like ``bench.server.cell``, with the digits a sub-millisecond figure needs."""
    if isinstance(value, float) and unit in ("ms", "$"):
        return cell(value, unit, 6 if unit == "$" else 4 if abs(value) < 1 else 2)
    return cell(value, unit)


def print_table(report: dict[str, dict[str, Any]], args: argparse.Namespace) -> None:
    title = (
        f"Budget enforcement overhead ({args.n} gateway rounds, {args.iterations} direct "
        f"timings, {args.pg_n} PostgreSQL reservations, {args.ops} operations per side)"
    )
    render_table(title, report, ROWS, TARGETS, show=show, width=120)


def collect(args: argparse.Namespace) -> dict[str, Any]:
    values: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="crewchief-bench-budgets-") as tmp:
        root = Path(tmp)
        values.update(gateway(root, args.n, args.warmup))
        print(f"  direct: {args.iterations} iterations of each piece", file=sys.stderr)
        values.update(asyncio.run(direct(root / "direct", args.iterations)))
        values.update(run_scaled(root, args.pg_n))
        values.update(asyncio.run(operations(root / "ops", args.ops, max(1, args.ops // 10))))
    values.update(overheads(values))
    for op in ("op_fast", "op_plan5"):
        values[f"{op}_overhead_per_call_ms"] = (
            values[f"{op}_overhead_p50_ms"] / values[f"{op}_calls"]
        )
    return values


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, and print the table (or JSON). Always returns 0."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.budgets", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--n", type=int, default=400, help="gateway rounds per key (400)")
    parser.add_argument("--warmup", type=int, default=40, help="untimed gateway rounds (40)")
    parser.add_argument("--iterations", type=int, default=5000, help="direct timings (5000)")
    parser.add_argument("--pg-n", type=int, default=500, help="PostgreSQL reservations (500)")
    parser.add_argument("--ops", type=int, default=60, help="operations per side (60)")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    if min(args.n, args.pg_n, args.ops) < 1 or args.iterations < 10 or args.warmup < 0:
        parser.error("--n, --pg-n, --ops must be ≥ 1, --iterations ≥ 10, --warmup ≥ 0")
    values = collect(args)
    report = build_report(values, 0, TARGETS)
    for key, value in values.items():  # build_report keeps 3 decimals: too few for µs
        if isinstance(value, float):
            report[key]["value"] = round(value, 6)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
