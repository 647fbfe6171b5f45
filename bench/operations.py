"""Operation latency: crewchief in embedded mode against a bare LangGraph graph of the same shape.

Run from the repository root::

    python -m bench.operations [--n 200] [--warmup 20] [--json]

Both sides use the zero-latency ``fake`` model and crewchief's SQLite checkpointer
(LangGraph's ``SqliteSaver`` on one thread, WAL, ``synchronous=NORMAL``) on a file in a
fresh temporary directory, so the difference between them is crewchief's own overhead:
the app database, events, the usage ledger, node wiring and reading the result back.

The bare graph runs with LangGraph's default durability (a checkpoint after every
step). crewchief checkpoints a fast-path run only when it ends, so the fast path is
also timed on the bare graph with ``durability="exit"``, for the like-for-like ratio.
This is a report, not a test: it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langchain_core.messages import HumanMessage, SystemMessage
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send

from crewchief import prompts
from crewchief.client.facade import Crewchief
from crewchief.config import Settings, load_settings
from crewchief.db.checkpoint import checkpointer
from crewchief.models.fake import FakeChatModel, FakeScript

N_TASKS = 5
MODEL = f"fake:default?tasks={N_TASKS}"
FAST_REQUEST = "What is a monad?"
PLAN_REQUEST = "Add a docstring to every public function of the parser module"
COLD_START_RUNS = 5
# Upper bounds; ``None`` means the figure is informational.
TARGETS: dict[str, float | None] = {
    "fast_path_crewchief_p50_ms": 15.0,
    "fast_path_ratio": 1.5,
    "plan5_crewchief_p50_ms": 80.0,
    "plan5_ratio": 1.5,
    "peak_rss_mb": 300.0,
    "cli_help_cold_start_s": 1.0,
}


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0-100) by linear interpolation between closest ranks."""
    xs, k = sorted(values), (len(values) - 1) * q / 100
    lo, hi = math.floor(k), math.ceil(k)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


async def time_interleaved(
    runs: dict[str, tuple[Callable[[], Awaitable[Any]], Callable[[Any], None]]], n: int, warmup: int
) -> dict[str, list[float]]:
    """Await each ``run()`` ``warmup`` times untimed, then ``n`` times timed, alternating between them.

    Alternating keeps a crewchief/bare pair under the same machine load. Each
    ``check(result)`` (not timed) raises when a run went wrong.

    Returns:
        Name → wall time of each timed run, in milliseconds.
    """
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(warmup + n):
        for name, (run, check) in runs.items():
            started = time.perf_counter()
            result = await run()
            elapsed = (time.perf_counter() - started) * 1000
            check(result)
            if i >= warmup:
                times[name].append(elapsed)
    return times


def _merge(left: dict[str, str] | None, right: dict[str, str] | None) -> dict[str, str]:
    return {**(left or {}), **(right or {})}


class BareState(TypedDict, total=False):
    request: str
    forced_route: str | None
    route: str
    plan: list[dict[str, Any]]
    results: Annotated[dict[str, str], _merge]
    answer: str


async def ask(model: FakeChatModel, system: str, user: str) -> str:
    """Stream one reply and merge its chunks, as crewchief's model registry does."""
    merged = None
    async for chunk in model.astream([SystemMessage(system), HumanMessage(user)]):
        merged = chunk if merged is None else merged + chunk
    return merged.text if merged is not None else ""


def build_bare_graph(model: FakeChatModel, max_tasks: int) -> StateGraph:
    """detect → fast_path → END, or detect → plan → dispatch ⇄ execute_task (Send) → synthesize → END.

    Prompts are crewchief's, so the fake model sees the same text on both sides.
    Nothing is stored but LangGraph's checkpoints.
    """

    async def detect(state: BareState) -> dict[str, Any]:
        return {"route": state.get("forced_route") or "plan"}

    async def fast_path(state: BareState) -> dict[str, Any]:
        return {"answer": await ask(model, prompts.FAST_PATH_SYSTEM, state["request"])}

    async def plan(state: BareState) -> dict[str, Any]:
        marker, request = prompts.REQUEST_MARKER, state["request"]
        user = prompts.PLAN_USER.format(request_marker=marker, request=request, workspace="(none)")
        text = await ask(model, prompts.PLAN_SYSTEM.format(max_tasks=max_tasks, skills=""), user)
        return {"plan": json.loads(text)["tasks"]}

    async def dispatch(state: BareState) -> dict[str, Any]:
        return {}

    def next_tasks(state: BareState) -> list[Send] | str:
        done = state.get("results") or {}
        sends = [
            Send(
                "execute_task",
                {
                    "request": state["request"],
                    "task": t,
                    "dependencies": {str(d): done[str(d)] for d in t["depends_on"]},
                },
            )
            for t in state["plan"]
            if str(t["id"]) not in done and all(str(d) in done for d in t["depends_on"])
        ]
        return sends or "synthesize"

    async def execute_task(state: dict[str, Any]) -> dict[str, Any]:
        task = state["task"]
        deps_text = "\n\n".join(
            f"{prompts.RESULT_MARKER} {d}:\n{r}" for d, r in state["dependencies"].items()
        )
        user = prompts.TASK_USER.format(
            request_marker=prompts.REQUEST_MARKER,
            request=state["request"],
            task_marker=prompts.TASK_MARKER,
            description=task["description"],
            workspace="(none)",
            dependencies=("\nResults of the tasks this one depends on:\n\n" + deps_text)
            if deps_text
            else "",
        )
        return {"results": {str(task["id"]): await ask(model, prompts.TASK_SYSTEM, user)}}

    async def synthesize(state: BareState) -> dict[str, Any]:
        results = "\n\n".join(
            f"{prompts.RESULT_MARKER} {t['id']} — {t['description']} [completed]:\n{state['results'][str(t['id'])]}"
            for t in state["plan"]
        )
        marker, request = prompts.REQUEST_MARKER, state["request"]
        user = prompts.SYNTHESIZE_USER.format(
            request_marker=marker, request=request, results=results
        )
        return {"answer": await ask(model, prompts.SYNTHESIZE_SYSTEM, user)}

    graph = StateGraph(BareState)
    for node in (detect, fast_path, plan, dispatch, execute_task, synthesize):
        graph.add_node(node.__name__, node)
    for start, end in (
        (START, "detect"),
        ("fast_path", END),
        ("plan", "dispatch"),
        ("execute_task", "dispatch"),
        ("synthesize", END),
    ):
        graph.add_edge(start, end)
    graph.add_conditional_edges(
        "detect", lambda s: "fast_path" if s["route"] == "fast" else "plan", ["fast_path", "plan"]
    )
    graph.add_conditional_edges("dispatch", next_tasks, ["execute_task", "synthesize"])
    return graph


def _check(side: str, tasks: int) -> Callable[[Any], None]:
    """A check that a ``crewchief`` or ``bare`` run completed with an answer and ``tasks`` tasks."""

    def check(r: Any) -> None:
        if side == "crewchief":
            ok = r.status == "completed" and bool(r.answer) and len(r.tasks) == tasks
        else:
            ok = bool(r.get("answer")) and len(r.get("results") or {}) == tasks
        if not ok:
            raise RuntimeError(f"a {side} benchmark run went wrong: {str(r)[:300]}")

    return check


async def measure_latency(home: Path, n: int, warmup: int) -> dict[str, list[float]]:
    """Time both scenarios on crewchief and on the bare graph (runs of a pair alternate)."""
    empty_config = home / "empty.toml"  # so a ./crewchief.toml cannot change the set-up
    empty_config.write_text("")
    settings: Settings = load_settings(
        config_file=empty_config,
        env={"CREWCHIEF_HOME": str(home / "crewchief"), "CREWCHIEF_MODEL": MODEL},
    )
    model = FakeChatModel(script=FakeScript(auto_tasks=N_TASKS), model_name="bare")
    # The same checkpointer crewchief attaches, on a file of its own.
    bare_settings = settings.model_copy(
        update={"checkpoint_url": str(home / "bare-checkpoints.db")}
    )
    async with Crewchief(settings) as cc, checkpointer(bare_settings) as saver:
        bare = build_bare_graph(model, settings.max_plan_tasks).compile(checkpointer=saver)

        limits = {
            "max_concurrency": settings.max_parallel_tasks,
            "recursion_limit": 20 + 3 * settings.max_plan_tasks,
        }

        async def run_bare(
            request: str, route: str, durability: str = "async"
        ) -> dict[str, Any]:  # config as crewchief's runner
            config = {**limits, "configurable": {"thread_id": str(uuid.uuid4())}}
            return await bare.ainvoke(
                {"request": request, "forced_route": route}, config, durability=durability
            )

        out: dict[str, list[float]] = {}
        for scenario, request, route, tasks in (
            ("fast_path", FAST_REQUEST, "fast", 0),
            ("plan5", PLAN_REQUEST, "plan", N_TASKS),
        ):
            print(
                f"  {scenario}: {warmup} warm-up + {n} timed runs each of crewchief and bare",
                file=sys.stderr,
            )
            runs = {
                f"{scenario}_crewchief": (
                    functools.partial(cc.run, request, route=route),
                    _check("crewchief", tasks),
                ),
                f"{scenario}_bare": (
                    functools.partial(run_bare, request, route),
                    _check("bare", tasks),
                ),
            }
            if scenario == "fast_path":
                # crewchief checkpoints a fast-path run only when it ends; so can a bare graph.
                runs["fast_path_bare_exit"] = (
                    functools.partial(run_bare, request, route, "exit"),
                    _check("bare", tasks),
                )
            out.update(await time_interleaved(runs, n, warmup))
        return out


def cli_cold_start(home: Path, runs: int = COLD_START_RUNS) -> tuple[float, str | None]:
    """Median wall time of ``crewchief --help`` in a fresh process, and an error if it failed."""
    script = Path(sys.executable).with_name("crewchief")
    cmd = (
        [str(script), "--help"]
        if script.exists()
        else [sys.executable, "-m", "crewchief.cli", "--help"]
    )
    env = {**os.environ, "CREWCHIEF_HOME": str(home / "cli")}
    times, error = [], None
    for _ in range(runs):
        started = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        times.append(time.perf_counter() - started)
        if proc.returncode != 0:
            error = f"exit {proc.returncode}: {proc.stderr.strip()[-300:]}"
    return statistics.median(times), error


def collect(n: int, warmup: int) -> dict[str, dict[str, Any]]:
    """Run every measurement and return ``{key: {"value", "target", "pass"}}``."""
    with tempfile.TemporaryDirectory(prefix="crewchief-bench-") as tmp:
        latency = asyncio.run(measure_latency(Path(tmp), n, warmup))
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux
        print(f"  crewchief --help: {COLD_START_RUNS} cold starts", file=sys.stderr)
        cold, cold_error = cli_cold_start(Path(tmp))
    values: dict[str, float] = {}
    for name, times in latency.items():
        values[f"{name}_p50_ms"], values[f"{name}_p95_ms"] = (
            percentile(times, 50),
            percentile(times, 95),
        )
    for scenario in ("fast_path", "plan5"):
        values[f"{scenario}_ratio"] = (
            values[f"{scenario}_crewchief_p50_ms"] / values[f"{scenario}_bare_p50_ms"]
        )
    values["fast_path_ratio_to_bare_exit"] = (
        values["fast_path_crewchief_p50_ms"] / values["fast_path_bare_exit_p50_ms"]
    )
    values.update(peak_rss_mb=peak_rss_mb, cli_help_cold_start_s=cold)
    report: dict[str, dict[str, Any]] = {}
    for key, value in values.items():
        target = TARGETS.get(key)
        report[key] = {
            "value": round(value, 3),
            "target": target,
            "pass": None if target is None else value <= target,
        }
    if cold_error:
        report["cli_help_cold_start_s"].update({"pass": False, "error": cold_error})
    met = all(m["pass"] is not False for m in report.values())
    report["all_targets_met"] = {"value": met, "target": True, "pass": met}
    return report


def _verdict(*items: dict[str, Any]) -> str:
    checked = [m["pass"] for m in items if m["pass"] is not None]
    return "PASS" if all(checked) else "FAIL"


def print_table(report: dict[str, dict[str, Any]], n: int, warmup: int) -> None:
    """Print the report as a rich table, then the overall line."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"crewchief operations vs bare LangGraph ({n} runs, {warmup} warm-up, fake model)"
    )
    for column in ("measurement", "p50 ms", "p95 ms", "ratio (p50)", "target", "result"):
        table.add_column(column, justify="left" if column in ("measurement", "target") else "right")
    for scenario, label in (("fast_path", "fast-path"), ("plan5", f"plan+{N_TASKS}")):
        p50, ratio = report[f"{scenario}_crewchief_p50_ms"], report[f"{scenario}_ratio"]
        goal = f"p50 ≤ {p50['target']:g} ms" + (
            f", ratio ≤ {ratio['target']:g}×" if ratio["target"] else ""
        )
        for side in ("crewchief", "bare"):
            cells = [f"{report[f'{scenario}_{side}_p{q}_ms']['value']:.2f}" for q in (50, 95)]
            extra = (
                [f"{ratio['value']:.2f}×", goal, _verdict(p50, ratio)]
                if side == "crewchief"
                else ["", "", ""]
            )
            table.add_row(f"{label} {side}", *cells, *extra)
        if scenario == "fast_path":
            exit_ratio = report["fast_path_ratio_to_bare_exit"]["value"]
            cells = [f"{report[f'fast_path_bare_exit_p{q}_ms']['value']:.2f}" for q in (50, 95)]
            table.add_row(f"{label} bare, checkpoint at exit", *cells, f"{exit_ratio:.2f}×", "", "")
    rss, cold = report["peak_rss_mb"], report["cli_help_cold_start_s"]
    table.add_row(
        "peak RSS", f"{rss['value']:.1f} MB", "", "", f"≤ {rss['target']:g} MB", _verdict(rss)
    )
    table.add_row(
        f"crewchief --help (median of {COLD_START_RUNS})",
        f"{cold['value'] * 1000:.0f} ms",
        "",
        "",
        f"≤ {cold['target']:g} s",
        _verdict(cold),
    )
    console = Console()
    console.width = max(console.width, 110)  # pipes default to 80 columns, which wraps the rows
    console.print(table)
    if "error" in cold:
        console.print(f"crewchief --help failed: {cold['error']}", markup=False)
    console.print(f"all targets met: {'yes' if report['all_targets_met']['value'] else 'NO'}")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, and print the table (or JSON). Always returns 0."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.operations", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--n", type=int, default=200, help="timed runs per scenario (default 200)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed runs first (default 20)")
    parser.add_argument(
        "--json", action="store_true", help="print the figures as one JSON object only"
    )
    args = parser.parse_args(argv)
    if args.n < 1 or args.warmup < 0:
        parser.error("--n must be ≥ 1 and --warmup ≥ 0")
    report = collect(args.n, args.warmup)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_table(report, args.n, args.warmup)
    return 0


if __name__ == "__main__":
    sys.exit(main())
