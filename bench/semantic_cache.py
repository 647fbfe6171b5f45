"""The semantic cache's threshold, chosen and checked on the shipped labelled set.

Run from the repository root::

    python -m bench.semantic_cache [--file PATH] [--threshold T] [--json]

Each line of the set (``crewchief/knowledge/data/semantic_pairs.jsonl``) is two
single-turn requests and whether one's answer is right for the other (``same``: a
paraphrase) or not (``different``: a near miss, e.g. another language, version, file,
concept or the opposite action). A pair is a cache hit at threshold t when the two agree on
their critical terms (:mod:`crewchief.gateway._critical_terms`) and their cosine similarity
with the shipped embeddings is at least t, as in the gateway.

The set is split in two halves by the SHA-256 of each pair's two requests, so the split
never depends on the figures. The threshold is chosen on the calibration half: the lowest
one, in steps of 0.01, at which the hits are right at least 99 % of the time, and at every
higher step. At that threshold the report gives precision (hits that are right) and recall
(paraphrases found) on the calibration half, on the held-out half (which played no part in
the choice) and on the whole set, and what the similarity alone would give; then the
held-out and whole-set figures at the configured ``gateway.semantic_threshold`` (or
``--threshold``), and what the guard costs. The targets are the held-out half's. This is a report, not a test: it
exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.server import build_report, cell, render_table

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT / "crewchief" / "knowledge" / "data" / "semantic_pairs.jsonl"
PRECISION = 0.99  # the least share of right hits the threshold is chosen for
STEP = 0.01
TARGETS: dict[str, tuple[str, float]] = {
    "heldout_precision": ("≥", PRECISION),
    "heldout_recall": ("≥", 0.3),
}
ROWS = {
    "pairs": ("set", "pairs (same / different)", ""),
    "split": ("set", "calibration / held-out pairs", ""),
    "chosen_threshold": ("calibration", "lowest threshold with precision ≥ 0.99", ""),
    "calibration_precision": ("calibration", "precision there: hits that are right", ""),
    "calibration_recall": ("calibration", "recall there: paraphrases answered", ""),
    "heldout_precision": ("held-out", "precision at the chosen threshold", ""),
    "heldout_recall": ("held-out", "recall at the chosen threshold", ""),
    "heldout_false_hits": ("held-out", "near misses answered", ""),
    "precision": ("whole set", "precision at the chosen threshold", ""),
    "recall": ("whole set", "recall at the chosen threshold", ""),
    "false_hits": ("whole set", "near misses answered", ""),
    "unguarded_precision": ("similarity only", "precision at the chosen threshold", ""),
    "unguarded_false_hits": ("similarity only", "near misses answered", ""),
    "threshold": ("configured", "gateway.semantic_threshold (or --threshold)", ""),
    "configured_heldout_precision": ("configured", "held-out precision there", ""),
    "configured_heldout_recall": ("configured", "held-out recall there", ""),
    "configured_precision": ("configured", "whole-set precision there", ""),
    "configured_recall": ("configured", "whole-set recall there", ""),
    "guard_refuses_near_misses": ("guard", "near misses refused (any similarity)", ""),
    "guard_refuses_paraphrases": ("guard", "paraphrases refused (any similarity)", ""),
    "guard_request_us": ("guard", "critical terms of one request, mean (best of 5)", "µs"),
    "guard_lookup_us": ("guard", "one lookup: request + 4 candidates, mean", "µs"),
    "same_similarity_median": ("similarity", "paraphrases, median", ""),
    "different_similarity_median": ("similarity", "near misses, median", ""),
}


@dataclass(frozen=True, slots=True)
class Scored:
    similarity: float
    same: bool  # a paraphrase
    agree: bool  # the critical terms agree
    calibration: bool  # in the calibration half


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def in_calibration(pair: dict[str, Any]) -> bool:
    """The half a pair is in: fixed by its text alone."""
    digest = hashlib.sha256(f"{pair['a']}\n{pair['b']}".encode()).digest()
    return digest[0] % 2 == 0


def similarities(pairs: list[dict[str, Any]]) -> list[float]:
    """The cosine similarity of each pair, with the shipped embeddings."""
    from crewchief.knowledge.embeddings import LocalEmbeddings

    model = LocalEmbeddings()
    a = model.embed_documents([p["a"] for p in pairs])
    b = model.embed_documents([p["b"] for p in pairs])
    return [sum(x * y for x, y in zip(u, v, strict=True)) for u, v in zip(a, b, strict=True)]


def score(pairs: list[dict[str, Any]]) -> list[Scored]:
    from crewchief.gateway._critical_terms import agree

    return [
        Scored(sim, p["label"] == "same", agree(p["a"], p["b"]), in_calibration(p))
        for p, sim in zip(pairs, similarities(pairs), strict=True)
    ]


def at(
    scored: list[Scored], threshold: float, guard: bool = True
) -> tuple[float | None, float | None, int]:
    """Precision (None without hits), recall (None without paraphrases) and false hits."""
    hits = [s.same for s in scored if s.similarity >= threshold and (s.agree or not guard)]
    positives = sum(s.same for s in scored)
    right = sum(hits)
    precision = right / len(hits) if hits else None
    return precision, right / positives if positives else None, len(hits) - right


def choose(scored: list[Scored], precision: float = PRECISION) -> float | None:
    """The lowest threshold, in steps of :data:`STEP` from 0.99 down, at which the hits'
    precision is at least ``precision`` there and at every higher step (a step without
    hits has no wrong ones); None when the pairs never make a hit there."""
    best, hits = None, False
    for step in range(round(0.99 / STEP), 0, -1):
        threshold = round(step * STEP, 2)
        got, _, _ = at(scored, threshold)
        if got is not None and got < precision:
            break
        hits = hits or got is not None
        best = threshold
    return best if hits else None


def guard_cost(pairs: list[dict[str, Any]], rounds: int = 5) -> tuple[float, float]:
    """Mean microseconds to find one request's critical terms, and to guard one lookup (the
    request's terms, then each candidate's terms and the comparison): the best of
    ``rounds`` passes over the set, as ``timeit`` reports, so that other work on the
    machine weighs as little as it can."""
    from crewchief.gateway._critical_terms import conflict, terms_of
    from crewchief.gateway.semantic import CANDIDATES as candidates

    texts = [p[side] for p in pairs for side in ("a", "b")]
    per_request = per_pair = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        found = [terms_of(t) for t in texts]
        per_request = min(per_request, (time.perf_counter() - started) / len(texts))
        started = time.perf_counter()
        for i in range(0, len(found) - 1, 2):
            conflict(found[i], found[i + 1])
        per_pair = min(per_pair, (time.perf_counter() - started) / max(1, len(found) // 2))
    lookup = per_request * (1 + candidates) + per_pair * candidates
    return per_request * 1e6, lookup * 1e6


def collect(path: Path, threshold: float) -> dict[str, Any]:
    pairs = load(path)
    scored = score(pairs)
    calibration = [s for s in scored if s.calibration]
    heldout = [s for s in scored if not s.calibration]
    same = sum(s.same for s in scored)
    chosen = choose(calibration)
    values: dict[str, Any] = {
        "pairs": f"{len(pairs)} ({same} / {len(scored) - same})",
        "split": f"{len(calibration)} / {len(heldout)}",
        "chosen_threshold": chosen,
    }
    if chosen is not None:
        values.update(figures(calibration, heldout, scored, chosen))
    held_p, held_r, _ = at(heldout, threshold)
    all_p, all_r, _ = at(scored, threshold)
    request_us, lookup_us = guard_cost(pairs)
    values.update(
        threshold=threshold,
        configured_heldout_precision=held_p,
        configured_heldout_recall=held_r,
        configured_precision=all_p,
        configured_recall=all_r,
        guard_refuses_near_misses=_share([not s.agree for s in scored if not s.same]),
        guard_refuses_paraphrases=_share([not s.agree for s in scored if s.same]),
        guard_request_us=request_us,
        guard_lookup_us=lookup_us,
        same_similarity_median=_median([s.similarity for s in scored if s.same]),
        different_similarity_median=_median([s.similarity for s in scored if not s.same]),
    )
    return values


def figures(
    calibration: list[Scored], heldout: list[Scored], scored: list[Scored], threshold: float
) -> dict[str, Any]:
    """Precision, recall and near misses answered at ``threshold``: on each half, on the
    whole set, and on the whole set by similarity alone."""
    cal_p, cal_r, _ = at(calibration, threshold)
    held_p, held_r, held_false = at(heldout, threshold)
    all_p, all_r, all_false = at(scored, threshold)
    bare_p, _, bare_false = at(scored, threshold, guard=False)
    return {
        "calibration_precision": cal_p,
        "calibration_recall": cal_r,
        "heldout_precision": held_p,
        "heldout_recall": held_r,
        "heldout_false_hits": held_false,
        "precision": all_p,
        "recall": all_r,
        "false_hits": all_false,
        "unguarded_precision": bare_p,
        "unguarded_false_hits": bare_false,
    }


def _share(flags: list[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def _median(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def show(value: Any, unit: str) -> str:
    """Precision and similarity with three decimals, microseconds with one."""
    return cell(value, unit, digits=1 if unit == "µs" else 3)


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
            "semantic cache: critical terms, then similarity (local:wordllama)",
            report,
            ROWS,
            TARGETS,
            show,
            100,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
