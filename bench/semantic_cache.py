"""The semantic cache's threshold, on the shipped labelled set of paraphrases and near misses.

Run from the repository root::

    python -m bench.semantic_cache [--file PATH] [--json]

Each line of the set (``crewchief/knowledge/data/semantic_pairs.jsonl``) is two
single-turn requests and whether one's answer is right for the other (``same``: a
paraphrase) or not (``different``: a near miss, e.g. another language, version, file or
the opposite action). Both are embedded with the shipped model; a pair is a cache hit at
threshold t when their cosine similarity is at least t. The report gives, for the
configured ``gateway.semantic_threshold``: precision (hits that are right) and recall
(paraphrases found), and the lowest threshold whose precision on the set is at least 99 %.
This is a report, not a test: it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path
from typing import Any

from bench.server import build_report, cell, render_table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT / "crewchief" / "knowledge" / "data" / "semantic_pairs.jsonl"
TARGETS: dict[str, tuple[str, float]] = {"precision_at_threshold": ("≥", 0.99)}
ROWS = {
    "pairs": ("set", "pairs (same / different)", ""),
    "threshold": ("configured", "gateway.semantic_threshold", ""),
    "precision_at_threshold": ("configured", "precision: hits that are right", ""),
    "recall_at_threshold": ("configured", "recall: paraphrases answered from the cache", ""),
    "false_hits_at_threshold": ("configured", "near misses answered from the cache", ""),
    "lowest_threshold_99": ("calibration", "lowest threshold with precision ≥ 0.99", ""),
    "recall_at_lowest_99": ("calibration", "recall there", ""),
    "same_similarity_median": ("similarity", "paraphrases, median", ""),
    "different_similarity_median": ("similarity", "near misses, median", ""),
}


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def similarities(pairs: list[dict[str, Any]]) -> list[tuple[float, bool]]:
    """(cosine similarity, is a paraphrase) of each pair, with the shipped embeddings."""
    from crewchief.knowledge.embeddings import LocalEmbeddings

    model = LocalEmbeddings()
    a = model.embed_documents([p["a"] for p in pairs])
    b = model.embed_documents([p["b"] for p in pairs])
    return [
        (sum(x * y for x, y in zip(u, v, strict=True)), p["label"] == "same")
        for u, v, p in zip(a, b, pairs, strict=True)
    ]


def at(scored: list[tuple[float, bool]], threshold: float) -> tuple[float | None, float, int]:
    """Precision, recall and false hits at ``threshold``."""
    hits = [same for sim, same in scored if sim >= threshold]
    positives = sum(same for _, same in scored)
    right = sum(hits)
    precision = right / len(hits) if hits else None
    return precision, right / positives if positives else 0.0, len(hits) - right


def lowest_threshold(scored: list[tuple[float, bool]], precision: float = 0.99) -> float | None:
    """The lowest similarity of a pair at which the hits' precision is at least ``precision``
    and stays so for every higher threshold."""
    best = None
    for sim in sorted({s for s, _ in scored}, reverse=True):
        p, _, _ = at(scored, sim)
        if p is None or p < precision:
            break
        best = sim
    return best


def collect(path: Path, threshold: float) -> dict[str, Any]:
    import statistics

    pairs = load(path)
    scored = similarities(pairs)
    precision, recall, false_hits = at(scored, threshold)
    lowest = lowest_threshold(scored)
    same = sum(s for _, s in scored)
    return {
        "pairs": f"{len(pairs)} ({same} / {len(pairs) - same})",
        "threshold": threshold,
        "precision_at_threshold": precision,
        "recall_at_threshold": recall,
        "false_hits_at_threshold": false_hits,
        "lowest_threshold_99": lowest,
        "recall_at_lowest_99": at(scored, lowest)[1] if lowest is not None else None,
        "same_similarity_median": statistics.median(s for s, y in scored if y),
        "different_similarity_median": statistics.median(s for s, y in scored if not y),
    }


def main(argv: list[str] | None = None) -> int:
    from crewchief.config import GatewaySettings

    parser = argparse.ArgumentParser(
        prog="python -m bench.semantic_cache", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--file", type=Path, default=DEFAULT_FILE, help="the labelled set")
    parser.add_argument(
        "--threshold",
        type=float,
        default=GatewaySettings().semantic_threshold,
        help="the threshold to evaluate (default: the configured default)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object only")
    args = parser.parse_args(argv)
    report = build_report(collect(args.file, args.threshold), 0, TARGETS)
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        render_table(
            "semantic cache threshold (local:wordllama)",
            report,
            ROWS,
            TARGETS,
            functools.partial(cell, digits=3),  # precision and similarity: three decimals
            100,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
