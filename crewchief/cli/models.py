"""``crewchief models ...`` and the local-model set-up step of ``crewchief run``."""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from crewchief.local.store import Progress, ProgressFn


@contextmanager
def progress_reporter(console: Any) -> Iterator[ProgressFn]:
    """A callback drawing pulls and builds: a Rich bar on a terminal, plain lines otherwise."""
    if not console.is_terminal:
        yield _PlainReporter(console)
        return
    from rich.progress import BarColumn, TaskProgressColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    columns = [TextColumn("{task.description}"), BarColumn(), TaskProgressColumn()]
    with Bar(*columns, TimeElapsedColumn(), console=console, transient=False) as bar:
        tasks: dict[str, Any] = {}

        def report(p: Progress) -> None:
            text = p.message
            if p.stage in ("download", "join") and p.done is not None and p.total:
                text += f" · {p.done / 1e6:,.0f}/{p.total / 1e6:,.0f} MB"
            if p.stage not in tasks:
                tasks[p.stage] = bar.add_task(text, total=p.total)
            bar.update(tasks[p.stage], description=text, completed=p.done or 0, total=p.total)

        yield report


class _PlainReporter:
    """One line per new message, and at most one per 10% of a bar (CI logs stay short)."""

    def __init__(self, console: Any):
        self.console = console
        self.last: tuple[str, int] | None = None

    def __call__(self, p: Progress) -> None:
        tenth = int(10 * p.done / p.total) if p.done is not None and p.total else -1
        key = (p.message if p.stage != "download" else "download", tenth)
        if key == self.last:
            return
        self.last = key
        pct = f" {100 * p.done // p.total}%" if p.done is not None and p.total else ""
        self.console.print(f"{p.message}{pct}", style="dim", highlight=False, markup=False)


async def prepare_local_models(chief: Any, console: Any) -> None:
    """Pull, build and start the local models the aliases use, showing progress."""
    import asyncio

    models = chief.services.models.local_models()
    for spec, model in models:
        started = time.perf_counter()
        with progress_reporter(console) as report:
            await asyncio.to_thread(model.prepare, report)
        took = time.perf_counter() - started
        if took > 1:
            console.print(f"{spec} ready in {took:.0f}s", style="dim", highlight=False)


def add_parser(sub: Any) -> None:
    models = sub.add_parser("models", help="local models: pull, list, remove")
    models_sub = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    pull = models_sub.add_parser("pull", help="download, join and verify a local model")
    pull.add_argument("name", help="e.g. qwen2.5-coder-0.5b (see: crewchief models list)")
    ls = models_sub.add_parser("list", help="models that can be pulled, and which are")
    ls.add_argument("--json", action="store_true")
    rm = models_sub.add_parser("rm", help="delete a pulled model")
    rm.add_argument("name")
    models_sub.add_parser("server", help="find or build llama-server and print its path")


def run(settings: Any, args: argparse.Namespace) -> int:
    from rich.console import Console

    from crewchief.local.store import ModelStore

    out, err = Console(soft_wrap=True), Console(stderr=True, soft_wrap=True)
    store = ModelStore(settings.home)
    command = args.models_command
    if command == "pull":
        started = time.perf_counter()
        with progress_reporter(err) as report:
            path = store.pull(args.name, on_progress=report)
        err.print(f"took {time.perf_counter() - started:.1f}s", style="dim")
        out.print(str(path), highlight=False, markup=False)
    elif command == "list":
        _list(out, store, args.json)
    elif command == "rm":
        store.model(args.name)  # unknown names are an error, not a silent no-op
        removed = store.remove(args.name)
        out.print(f"removed {args.name}" if removed else f"{args.name} was not pulled")
    else:
        from crewchief.local.build import ensure_llama_server

        with progress_reporter(err) as report:
            path = ensure_llama_server(
                settings.home, explicit=settings.local.server_binary, on_progress=report
            )
        out.print(str(path), highlight=False, markup=False)
    return 0


def _list(out: Any, store: Any, as_json: bool) -> None:
    pulled = {m.model.name: m for m in store.installed()}
    rows = [
        {
            "name": m.name,
            "pulled": m.name in pulled,
            "size": m.size,
            "path": str(pulled[m.name].path) if m.name in pulled else None,
            "description": m.description,
        }
        for m in store.catalog.values()
    ]
    if as_json:
        out.print_json(data=rows)
        return
    for r in rows:
        mark = "pulled " if r["pulled"] else "-      "
        out.print(
            f"{r['name']:<22} {mark} {r['size'] / 1e6:>6.0f} MB  {r['description']}",
            highlight=False,
            markup=False,
        )
