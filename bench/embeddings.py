"""The local embedding model: load time, memory and texts embedded per second.

Run from the repository root::

    python -m bench.embeddings [--texts 2000] [--rounds 3] [--json]

One process, as a user's would run it: the time to import and load the model (its first
embedding, files checked by SHA-256 included), the resident memory it adds, then
``--rounds`` passes over ``--texts`` short texts (5 to 15 words, code questions and
plain sentences, each distinct), in the model's batches. Texts per second is the median
pass. This is a report, not a test: it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from typing import Any

from bench.server import build_report, render_table

TARGETS: dict[str, tuple[str, float]] = {"texts_per_s": ("≥", 500.0)}
ROWS = {
    "load_s": ("load", "import, SHA-256 check and first embedding", "s"),
    "rss_added_mb": ("load", "resident memory added", "MB"),
    "dimensions": ("load", "dimensions", ""),
    "texts": ("throughput", "texts per pass", ""),
    "texts_per_s": ("throughput", "texts per second (median pass)", "/s"),
    "texts_per_cpu_s": ("throughput", "texts per CPU second", "/s"),
    "cpus": ("machine", "CPUs", ""),
}
WORDS = (
    "parser cache thread lock token file error test retry timeout config module function"
    " class import request response queue worker database index query schema migration"
).split()
STARTS = ("How do I", "Why does the", "Fix the", "Add a test for the", "Explain the", "Rename the")


def texts(count: int, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    return [
        f"{rng.choice(STARTS)} {' '.join(rng.choices(WORDS, k=rng.randint(4, 13)))} ({i})"
        for i in range(count)
    ]


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def collect(count: int, rounds: int) -> dict[str, Any]:
    before = _rss_mb()
    started = time.perf_counter()
    from crewchief.knowledge.embeddings import LocalEmbeddings

    model = LocalEmbeddings()
    dims = len(model.embed_query("warm up"))
    load = time.perf_counter() - started
    added = _rss_mb() - before
    batch = texts(count)
    rates, cpu_rates = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        model.embed_documents(batch)
        rates.append(count / (time.perf_counter() - wall))
        cpu_rates.append(count / max(1e-9, time.process_time() - cpu))
    return {
        "load_s": load,
        "rss_added_mb": added,
        "dimensions": dims,
        "texts": count,
        "texts_per_s": statistics.median(rates),
        "texts_per_cpu_s": statistics.median(cpu_rates),
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.embeddings", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--texts", type=int, default=2000, help="texts per pass (2000)")
    parser.add_argument("--rounds", type=int, default=3, help="passes (3)")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    if args.texts < 1 or args.rounds < 1:
        parser.error("--texts and --rounds must be at least 1")
    report = build_report(collect(args.texts, args.rounds), 0, TARGETS)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        render_table("local embeddings (local:wordllama)", report, ROWS, TARGETS, width=90)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
