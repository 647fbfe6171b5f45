"""The conversation memory: what a recall adds to a gateway request.

Run from the repository root::

    python -m bench.memory [--entries 2000] [--owners 10] [--queries 200] [--json]

An embedded Chroma in a temporary home holds ``--entries`` stored exchanges spread over
``--owners`` owners (distinct seeded requests); then ``--queries`` recalls of one owner
run one after another, each as the gateway makes it (embed the request, search that
owner's entries, k = 3, floor 0.7). The time of a recall is what memory adds to a request.
This is a report, not a test: it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._scenarios import percentile
from bench.embeddings import texts
from bench.server import build_report, render_table

TARGETS: dict[str, tuple[str, float]] = {"recall_p50_ms": ("≤", 10.0)}
ROWS = {
    "entries": ("store", "exchanges stored (all owners)", ""),
    "store_s": ("store", "time to store them", "s"),
    "recall_p50_ms": ("recall", "recall time, p50", "ms"),
    "recall_p95_ms": ("recall", "recall time, p95", "ms"),
    "recall_hits_mean": ("recall", "exchanges added per recall (mean)", ""),
    "queries": ("recall", "recalls timed", ""),
}


async def collect(entries: int, owners: int, queries: int) -> dict[str, Any]:
    from crewchief.knowledge.embeddings import LocalEmbeddings
    from crewchief.knowledge.memory import ConversationMemory
    from crewchief.knowledge.store import VectorStore
    from tests.conftest import make_settings

    with tempfile.TemporaryDirectory(prefix="crewchief-bench-memory-") as tmp:
        settings = make_settings(Path(tmp) / "home")
        store = VectorStore(settings, LocalEmbeddings(), "memory")
        memory = ConversationMemory(store, k=3, floor=0.7)
        asked = texts(entries, seed=11)
        started = time.perf_counter()
        per_owner: dict[str, list[str]] = {}
        for i, text in enumerate(asked):
            per_owner.setdefault(f"owner-{i % owners}", []).append(text)
        for owner, mine in per_owner.items():
            meta = [{"answer": f"answer to {t}", "conversation": "c"} for t in mine]
            await store.aadd(owner, mine, metadatas=meta)
        stored = time.perf_counter() - started
        rng = random.Random(5)
        pool = per_owner["owner-0"]
        timings, hits = [], 0
        for _ in range(queries):
            words = rng.choice(pool).split()
            query = " ".join(words[:-1] + ["again"])  # a near-paraphrase of a stored request
            recalled = await memory.recall("owner-0", query, exclude_conversation="other")
            timings.append(recalled.ms)
            hits += len(recalled.hits)
    return {
        "entries": entries,
        "store_s": stored,
        "recall_p50_ms": percentile(timings, 50),
        "recall_p95_ms": percentile(timings, 95),
        "recall_hits_mean": hits / max(1, queries),
        "queries": queries,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.memory", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--entries", type=int, default=2000, help="exchanges stored (2000)")
    parser.add_argument("--owners", type=int, default=10, help="owners they belong to (10)")
    parser.add_argument("--queries", type=int, default=200, help="recalls timed (200)")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    if min(args.entries, args.owners, args.queries) < 1 or args.entries < args.owners:
        parser.error("--entries, --owners and --queries must be at least 1, --entries ≥ --owners")
    values = asyncio.run(collect(args.entries, args.owners, args.queries))
    report = build_report(values, 0, TARGETS)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        render_table(
            "conversation memory (embedded Chroma, local embeddings)",
            report,
            ROWS,
            TARGETS,
            width=90,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
