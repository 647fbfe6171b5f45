"""The simplicity detector: accuracy, decision latency and cold start.

Run from the repository root::

    python -m bench.simplicity [--calls 10000] [--json]

- calibration of the scores on the dev set: Brier score and expected
  calibration error over ten equal-width bins;
- accuracy of the shipped model on the dev set (written separately from the
  training set), overall and per language, at the configured default threshold;
  the first keyword heuristic is measured on the same set for comparison;
- decision latency (``SimplicityDetector.decide``: signals, features, model and
  reasons) over ``--calls`` calls cycling through the dev set, in a warm process;
- cold start: wall time of ``crewchief classify`` reading one JSON line from
  stdin, in a fresh process, median of five runs.

This is a report, not a test: it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from bench._seed_heuristic import score_request
from crewchief.simplicity import DEFAULT_THRESHOLD, SimplicityDetector
from crewchief.simplicity.data import DATA_DIR, load_examples
from crewchief.simplicity.metrics import Metrics

TARGETS = {"accuracy": 0.95, "p50_ms": 2.0, "p99_ms": 10.0, "cold_start_s": 2.0}


@dataclass(slots=True)
class Report:
    dev_examples: int
    accuracy: float
    accuracy_by_lang: dict[str, float]
    fast_precision: float
    fast_recall: float
    seed_heuristic_accuracy: float
    brier: float
    ece: float
    calls: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    cold_start_s: float
    cold_start_runs: list[float]
    threshold: float

    def met(self) -> dict[str, bool]:
        return {
            "accuracy": self.accuracy >= TARGETS["accuracy"],
            "p50_ms": self.p50_ms <= TARGETS["p50_ms"],
            "p99_ms": self.p99_ms <= TARGETS["p99_ms"],
            "cold_start_s": self.cold_start_s <= TARGETS["cold_start_s"],
        }


def _calibration(scores: list[float], simple: list[bool], bins: int = 10) -> tuple[float, float]:
    """Brier score and expected calibration error (equal-width bins) of the scores."""
    brier = sum((s - y) ** 2 for s, y in zip(scores, simple, strict=True)) / len(scores)
    ece = 0.0
    for b in range(bins):
        members = [
            (s, y)
            for s, y in zip(scores, simple, strict=True)
            if b / bins <= s < (b + 1) / bins or (b == bins - 1 and s == 1.0)
        ]
        if members:
            gap = sum(s for s, _ in members) / len(members) - sum(y for _, y in members) / len(
                members
            )
            ece += len(members) / len(scores) * abs(gap)
    return brier, ece


def _percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def _cold_start(runs: int = 5) -> list[float]:
    exe = shutil.which("crewchief", path=str(Path(sys.executable).parent)) or "crewchief"
    line = json.dumps({"text": "What does a Django migration do?"}) + "\n"
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([exe, "classify"], input=line, text=True, capture_output=True, check=True)
        times.append(time.perf_counter() - started)
    return times


def measure(calls: int, dev_path: Path) -> Report:
    dev = load_examples(dev_path)
    detector = SimplicityDetector(threshold=DEFAULT_THRESHOLD)
    decisions = [detector.decide(e.text) for e in dev]
    metrics = Metrics.of((e.label or "", d.route) for e, d in zip(dev, decisions, strict=True))
    by_lang: dict[str, list[bool]] = defaultdict(list)
    for e, d in zip(dev, decisions, strict=True):
        by_lang[e.lang or "?"].append(e.label == d.route)
    seed = Metrics.of(
        (e.label or "", "fast" if score_request(e.text).score >= DEFAULT_THRESHOLD else "plan")
        for e in dev
    )
    brier, ece = _calibration([d.score for d in decisions], [e.label == "fast" for e in dev])
    texts = [e.text for e in dev]
    timings = []
    for i in range(calls):
        text = texts[i % len(texts)]
        started = time.perf_counter()
        detector.decide(text)
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    cold = _cold_start()
    return Report(
        dev_examples=len(dev),
        accuracy=metrics.accuracy,
        accuracy_by_lang={k: sum(v) / len(v) for k, v in sorted(by_lang.items())},
        fast_precision=metrics.precision("fast"),
        fast_recall=metrics.recall("fast"),
        seed_heuristic_accuracy=seed.accuracy,
        brier=brier,
        ece=ece,
        calls=calls,
        p50_ms=_percentile(timings, 0.50),
        p99_ms=_percentile(timings, 0.99),
        max_ms=timings[-1],
        cold_start_s=statistics.median(cold),
        cold_start_runs=cold,
        threshold=DEFAULT_THRESHOLD,
    )


def print_table(r: Report) -> None:
    from rich.console import Console
    from rich.table import Table

    met = r.met()
    table = Table(
        title=f"simplicity detector · dev set of {r.dev_examples} · threshold {r.threshold}"
    )
    for col in ("measure", "value", "target", "met"):
        table.add_column(col, justify="left" if col == "measure" else "right")
    langs = ", ".join(f"{k} {v:.1%}" for k, v in r.accuracy_by_lang.items())
    rows = [
        ("accuracy (dev)", f"{r.accuracy:.1%}", "≥ 95%", met["accuracy"]),
        ("  per language", langs, "", None),
        ("  fast precision / recall", f"{r.fast_precision:.1%} / {r.fast_recall:.1%}", "", None),
        ("  first keyword heuristic", f"{r.seed_heuristic_accuracy:.1%}", "", None),
        ("calibration: Brier / ECE", f"{r.brier:.3f} / {r.ece:.3f}", "", None),
        (f"decision p50 ({r.calls:,} calls)", f"{r.p50_ms:.3f} ms", "≤ 2 ms", met["p50_ms"]),
        ("decision p99", f"{r.p99_ms:.3f} ms", "≤ 10 ms", met["p99_ms"]),
        ("decision max", f"{r.max_ms:.3f} ms", "", None),
        ("cold start: crewchief classify, 1 line", f"{r.cold_start_s:.2f} s", "≤ 2 s", met["cold_start_s"]),
    ]  # fmt: skip
    for name, value, target, ok in rows:
        table.add_row(name, value, target, "" if ok is None else "yes" if ok else "NO")
    console = Console()
    console.print(table)
    console.print(f"all targets met: {'yes' if all(met.values()) else 'NO'}")


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, and print the table (or JSON). Always returns 0."""
    parser = argparse.ArgumentParser(prog="python -m bench.simplicity", description=__doc__)
    parser.add_argument("--calls", type=int, default=10_000, help="decisions to time (10000)")
    parser.add_argument("--dev", type=Path, default=DATA_DIR / "dev.jsonl", help="labelled JSONL")
    parser.add_argument("--json", action="store_true", help="print the report as JSON only")
    args = parser.parse_args(argv)
    report = measure(args.calls, args.dev)
    if args.json:
        print(json.dumps({**asdict(report), "met": report.met()}, indent=2))
    else:
        print_table(report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
