"""Hybrid code search: retrieval quality on a labelled query set, and speed at scale.

Run from the repository root::

    python -m bench.code_search [--chunks 10000] [--queries 200] [--only quality|speed] [--json]

*Quality.* The source of ``httpx`` 0.29.0 (installed with the dev extra, not written here)
is copied into a workspace and indexed; each of the labelled queries in
``bench/data/code_search_httpx.jsonl`` (question → the definitions that answer it, with
their line spans) is searched with BM25 alone, vectors alone and hybrid (both, fused by
reciprocal rank). A hit is relevant when it lies in a labelled file and overlaps a labelled
definition's lines; each definition counts once. recall@10 is the share of a query's
definitions found in the first 10 hits, nDCG@10 rewards finding them early; both are
averaged over the queries. The fusion's rank constant was chosen on the even-numbered
queries; the odd-numbered ones are reported apart, as held out.

*Speed.* Python files of installed packages are copied into a workspace until it holds
``--chunks`` chunks, then: the first index (files/s), ``--queries`` hybrid searches (p50,
p95), a refresh that finds nothing changed, and a refresh after one file changed.

This is a report, not a test: it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import math
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench._scenarios import percentile
from bench.server import build_report, render_table

LABELS = Path(__file__).parent / "data" / "code_search_httpx.jsonl"
CORPUS_PACKAGE, CORPUS_VERSION = "httpx", "0.29.0"
# Packages whose Python files make the speed corpus, in order, until it is big enough.
SPEED_PACKAGES = ("sqlalchemy", "pydantic", "langchain_core", "langgraph", "fastapi", "starlette")
K = 10
MODES = ("bm25", "vector", "hybrid")

TARGETS: dict[str, tuple[str, float]] = {
    "hybrid_recall": ("≥", 0.8),
    "hybrid_beats_both": ("≥", 1),
    "query_p50_ms": ("≤", 20.0),
}
ROWS = {
    "queries_labelled": ("quality", f"labelled queries ({CORPUS_PACKAGE} {CORPUS_VERSION})", ""),
    "quality_chunks": ("quality", "chunks indexed", ""),
    **{
        f"{mode}_{metric}": ("quality", f"{mode}: {name}@{K}", "")
        for mode in MODES
        for metric, name in (("recall", "recall"), ("ndcg", "nDCG"))
    },
    "hybrid_beats_both": ("quality", "hybrid ≥ BM25 and ≥ vectors on both (1 = yes)", ""),
    "bm25_recall_heldout": ("held-out", "bm25: recall@10, odd-numbered queries", ""),
    "hybrid_recall_heldout": ("held-out", "hybrid: recall@10, odd-numbered queries", ""),
    "hybrid_ndcg_heldout": ("held-out", "hybrid: nDCG@10, odd-numbered queries", ""),
    "speed_files": ("speed", "files indexed", ""),
    "speed_chunks": ("speed", "chunks indexed", ""),
    "index_s": ("speed", "first index, total", "s"),
    "index_files_per_s": ("speed", "indexing throughput", "files/s"),
    "index_chunks_per_s": ("speed", "indexing throughput", "chunks/s"),
    "query_p50_ms": ("speed", "hybrid query, p50", "ms"),
    "query_p95_ms": ("speed", "hybrid query, p95", "ms"),
    "bm25_query_p50_ms": ("speed", "BM25-only query, p50", "ms"),
    "refresh_unchanged_ms": ("speed", "refresh, nothing changed", "ms"),
    "refresh_one_file_ms": ("speed", "refresh after one file changed", "ms"),
    "load_s": ("speed", "loading the stored index in a new process", "s"),
    "index_mb": ("speed", "index on disk (SQLite + Chroma)", "MB"),
}


def load_labels(path: Path = LABELS) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _relevant(hit: Any, label: dict[str, Any]) -> bool:
    start, end = label["lines"]
    return hit.path == label["path"] and hit.start <= end and start <= hit.end


def score(hits: list[Any], labels: list[dict[str, Any]], k: int = K) -> tuple[float, float]:
    """(recall@k, nDCG@k) of one query's hits (each labelled definition counts once)."""
    found: set[int] = set()
    dcg = 0.0
    for rank, hit in enumerate(hits[:k]):
        new = [i for i, label in enumerate(labels) if i not in found and _relevant(hit, label)]
        if new:
            found.add(new[0])
            dcg += 1.0 / math.log2(rank + 2)
    ideal = sum(1.0 / math.log2(r + 2) for r in range(min(len(labels), k)))
    return len(found) / len(labels), dcg / ideal


def _settings(home: Path) -> Any:
    from tests.conftest import make_settings

    return make_settings(home)


def _package_dir(name: str) -> Path:
    module = __import__(name)
    return Path(module.__file__).parent


def quality(tmp: Path) -> dict[str, Any]:
    from crewchief.knowledge.search import CodeSearch
    from crewchief.knowledge.stores import VectorStores

    installed = importlib.metadata.version(CORPUS_PACKAGE)
    if installed != CORPUS_VERSION:
        print(
            f"warning: {CORPUS_PACKAGE} {installed} is installed; the labels are for"
            f" {CORPUS_VERSION}",
            file=sys.stderr,
        )
    workspace = tmp / "quality"
    shutil.copytree(_package_dir(CORPUS_PACKAGE), workspace / CORPUS_PACKAGE)
    settings = _settings(tmp / "home-quality")
    search = CodeSearch(settings, VectorStores(settings))
    labels = load_labels()
    scores: dict[str, list[tuple[float, float]]] = {mode: [] for mode in MODES}
    try:
        first = search.search(None, workspace, "index", k=1, refresh="now")
        for item in labels:
            for mode in MODES:
                result = search.search(None, workspace, item["query"], k=K, mode=mode)
                scores[mode].append(score(result.hits, item["relevant"]))
    finally:
        search.close()
    values: dict[str, Any] = {"queries_labelled": len(labels), "quality_chunks": first.chunks}
    for mode in MODES:
        values[f"{mode}_recall"] = _mean(r for r, _ in scores[mode])
        values[f"{mode}_ndcg"] = _mean(n for _, n in scores[mode])
    held_out = {mode: scores[mode][1::2] for mode in ("bm25", "hybrid")}
    values["bm25_recall_heldout"] = _mean(r for r, _ in held_out["bm25"])
    values["hybrid_recall_heldout"] = _mean(r for r, _ in held_out["hybrid"])
    values["hybrid_ndcg_heldout"] = _mean(n for _, n in held_out["hybrid"])
    values["hybrid_beats_both"] = int(
        all(
            values[f"hybrid_{m}"] >= values[f"{other}_{m}"]
            for m in ("recall", "ndcg")
            for other in ("bm25", "vector")
        )
    )
    return values


def _mean(values: Any) -> float:
    items = list(values)
    return sum(items) / len(items)


def _speed_corpus(workspace: Path, chunks: int) -> int:
    """Copy Python files of installed packages into ``workspace`` until they make
    ``chunks`` chunks; how many files were copied."""
    from crewchief.knowledge.chunks import chunk_file

    total, files = 0, 0
    for package in SPEED_PACKAGES:
        try:
            root = _package_dir(package)
        except ImportError:
            continue
        for path in sorted(root.rglob("*.py")):
            rel = Path(package) / path.relative_to(root)
            text = path.read_text(errors="replace")
            target = workspace / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            files += 1
            total += len(chunk_file(str(rel), text))
            if total >= chunks:
                return files
    return files


def _disk_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1e6


def speed(tmp: Path, chunks: int, queries: int) -> dict[str, Any]:
    from crewchief.knowledge.search import CodeSearch
    from crewchief.knowledge.stores import VectorStores

    workspace = tmp / "speed"
    _speed_corpus(workspace, chunks)
    home = tmp / "home-speed"
    settings = _settings(home)
    search = CodeSearch(settings, VectorStores(settings))
    texts = [item["query"] for item in load_labels()]
    rng = random.Random(7)
    asked = [rng.choice(texts) for _ in range(queries)]
    values: dict[str, Any] = {}
    try:
        search.search(None, workspace, "warm up the embeddings", k=1, refresh="never")
        index = search.index(None, workspace)
        started = time.perf_counter()
        built = index.refresh()
        values["index_s"] = time.perf_counter() - started
        files, count = index.stats()
        values.update(speed_files=files, speed_chunks=count)
        values["index_files_per_s"] = files / values["index_s"]
        values["index_chunks_per_s"] = count / values["index_s"]
        assert built.added == files, built
        for mode, key in (("hybrid", "query"), ("bm25", "bm25_query")):
            timings = []
            for query in asked:
                t0 = time.perf_counter()
                search.search(None, workspace, query, k=K, mode=mode, refresh="never")
                timings.append((time.perf_counter() - t0) * 1000)
            values[f"{key}_p50_ms"] = percentile(timings, 50)
            if mode == "hybrid":
                values[f"{key}_p95_ms"] = percentile(timings, 95)
        t0 = time.perf_counter()
        index.refresh()
        values["refresh_unchanged_ms"] = (time.perf_counter() - t0) * 1000
        changed = sorted(workspace.rglob("*.py"))[len(asked) % files]
        changed.write_text(changed.read_text() + "\n\ndef added_for_the_benchmark():\n    pass\n")
        t0 = time.perf_counter()
        update = index.refresh()
        values["refresh_one_file_ms"] = (time.perf_counter() - t0) * 1000
        assert update.changed == 1, update
    finally:
        search.close()
    fresh = CodeSearch(settings, VectorStores(settings))
    try:
        t0 = time.perf_counter()
        fresh.index(None, workspace).ready()
        values["load_s"] = time.perf_counter() - t0
    finally:
        fresh.close()
    values["index_mb"] = _disk_mb(home)
    return values


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.code_search", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--chunks", type=int, default=10_000, help="speed corpus size (10000)")
    parser.add_argument("--queries", type=int, default=200, help="timed searches (200)")
    parser.add_argument("--only", choices=["quality", "speed"], help="run one part")
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    if args.chunks < 100 or args.queries < 1:
        parser.error("--chunks must be at least 100 and --queries at least 1")
    values: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="crewchief-bench-search-") as tmp:
        if args.only in (None, "quality"):
            values.update(quality(Path(tmp)))
        if args.only in (None, "speed"):
            values.update(speed(Path(tmp), args.chunks, args.queries))
    targets = {k: v for k, v in TARGETS.items() if k in values}
    report = build_report(values, 0, targets)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        render_table(
            "hybrid code search (BM25 + local vectors, reciprocal rank fusion)",
            report,
            ROWS,
            targets,
            width=100,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
