"""Role inference for gateway requests that name no role: accuracy and time per request.

Run from the repository root::

    python -m bench.roles [--rounds 20] [--json] [--errors dev]

- accuracy of :func:`crewchief.gateway.infer.infer_role` on the labelled set
  ``bench/data/roles.jsonl``, overall and per role, on each split. The cues are tuned on
  the ``dev`` split only; the ``test`` split is held out. The same hand wrote the set and
  the cues, so the figures overstate accuracy on real traffic: test lines whose source ends
  in ``/post-freeze`` were written after the cues were frozen, and their accuracy is
  reported on its own as the fairer estimate;
- the most common mistakes (expected → inferred) on each split;
- time per request (system prompt and request), p50 and p99 in µs over every example of
  the set, each timed ``--rounds`` times in a warm process;
- ``--errors SPLIT`` also lists the mistakes on one split, with the reasons.

This is a report, not a test: it exits 0 whatever the figures.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from crewchief.gateway.infer import infer_role, shipped_cues
from crewchief.gateway.roles import ROLES

DATA_FILE = Path(__file__).resolve().parent / "data" / "roles.jsonl"
SPLITS = ("dev", "test")
POST_FREEZE = "/post-freeze"  # source suffix: written after the cues were frozen
TARGETS = {"test_accuracy": 0.90, "p50_us": 1000.0}
_TOP_MISTAKES = 8


@dataclass(frozen=True, slots=True)
class Example:
    system: str | None
    request: str
    role: str
    source: str
    split: str
    line: int


def load_examples(path: Path = DATA_FILE) -> list[Example]:
    """The labelled set; raises ValueError naming the line of a malformed example."""
    examples = []
    for n, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            item = json.loads(raw)
            ex = Example(
                item["system"], item["request"], item["role"], item["source"], item["split"], n
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"{path.name}:{n}: {exc}") from None
        if ex.role not in ROLES or ex.split not in SPLITS:
            raise ValueError(f"{path.name}:{n}: role {ex.role!r} or split {ex.split!r} unknown")
        examples.append(ex)
    return examples


@dataclass(slots=True)
class SplitReport:
    examples: int
    accuracy: float
    by_role: dict[str, float]
    support: dict[str, int]
    mistakes: list[tuple[str, str, int]]  # (expected, inferred, count), most common first


@dataclass(slots=True)
class Report:
    examples: int
    splits: dict[str, SplitReport]
    post_freeze_examples: int
    post_freeze_accuracy: float
    rounds: int
    p50_us: float
    p99_us: float
    max_us: float
    mean_us: float

    def met(self) -> dict[str, bool]:
        return {
            "test_accuracy": self.splits["test"].accuracy >= TARGETS["test_accuracy"],
            "p50_us": self.p50_us <= TARGETS["p50_us"],
        }


def evaluate(examples: list[Example]) -> SplitReport:
    """Accuracy overall and per role, and the most common mistakes."""
    right: Counter[str] = Counter()
    support: Counter[str] = Counter()
    mistakes: Counter[tuple[str, str]] = Counter()
    for ex in examples:
        got = infer_role(ex.system, ex.request).role
        support[ex.role] += 1
        if got == ex.role:
            right[ex.role] += 1
        else:
            mistakes[(ex.role, got)] += 1
    total = sum(support.values())
    return SplitReport(
        examples=total,
        accuracy=sum(right.values()) / total if total else 0.0,
        by_role={r: right[r] / support[r] for r in ROLES if support[r]},
        support={r: support[r] for r in ROLES if support[r]},
        mistakes=[(a, b, n) for (a, b), n in mistakes.most_common(_TOP_MISTAKES)],
    )


def time_requests(examples: list[Example], rounds: int) -> list[float]:
    """Seconds per call, every example timed once per round (after one warm-up round)."""
    shipped_cues()
    for ex in examples:
        infer_role(ex.system, ex.request)
    times: list[float] = []
    clock = time.perf_counter
    gc_was_enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(rounds):
            for ex in examples:
                t0 = clock()
                infer_role(ex.system, ex.request)
                times.append(clock() - t0)
    finally:
        if gc_was_enabled:
            gc.enable()
    return times


def _quantile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def run(examples: list[Example], rounds: int) -> Report:
    splits = {s: evaluate([e for e in examples if e.split == s]) for s in SPLITS}
    late = evaluate([e for e in examples if e.source.endswith(POST_FREEZE)])
    times = sorted(time_requests(examples, rounds))
    us = 1e6
    return Report(
        examples=len(examples),
        splits=splits,
        post_freeze_examples=late.examples,
        post_freeze_accuracy=late.accuracy,
        rounds=rounds,
        p50_us=round(_quantile(times, 0.50) * us, 1),
        p99_us=round(_quantile(times, 0.99) * us, 1),
        max_us=round(times[-1] * us, 1),
        mean_us=round(statistics.fmean(times) * us, 1),
    )


def _pct(x: float) -> str:
    return f"{100 * x:5.1f}%"


def print_table(report: Report) -> None:
    dev, test = report.splits["dev"], report.splits["test"]
    print(f"Role inference on {report.examples} labelled requests (bench/data/roles.jsonl)\n")
    print(f"{'role':<16}{'dev':>8}{'n':>5}{'test':>9}{'n':>5}")
    for role in ROLES:
        cells = []
        for split in (dev, test):
            acc = split.by_role.get(role)
            cells.append(
                f"{_pct(acc) if acc is not None else '-':>8}{split.support.get(role, 0):>5}"
            )
        print(f"{role:<16}{cells[0]}{' ' + cells[1]}")
    print(
        f"{'overall':<16}{_pct(dev.accuracy):>8}{dev.examples:>5} {_pct(test.accuracy):>8}"
        f"{test.examples:>5}   (target on test: ≥ {TARGETS['test_accuracy']:.0%})"
    )
    if report.post_freeze_examples:
        print(
            f"{'post-freeze':<16}{'':>13} {_pct(report.post_freeze_accuracy):>8}"
            f"{report.post_freeze_examples:>5}   (test lines written after the cues were frozen)"
        )
    print()
    for name, split in report.splits.items():
        mistakes = ", ".join(f"{a} → {b} ×{n}" for a, b, n in split.mistakes) or "none"
        print(f"most common mistakes ({name}): {mistakes}")
    print(
        f"\ntime per request over {report.examples} requests × {report.rounds} rounds: "
        f"p50 {report.p50_us:.0f} µs, p99 {report.p99_us:.0f} µs, max {report.max_us:.0f} µs, "
        f"mean {report.mean_us:.0f} µs (target p50 ≤ {TARGETS['p50_us']:.0f} µs)"
    )
    met = report.met()
    print(f"all targets met: {'yes' if all(met.values()) else 'NO'}")


def print_errors(examples: list[Example], split: str) -> None:
    for ex in examples:
        if ex.split != split:
            continue
        got = infer_role(ex.system, ex.request)
        if got.role != ex.role:
            request = " ".join(ex.request.split())[:100]
            print(f"\nline {ex.line} [{ex.source}] expected {ex.role}, got {got.role}: {request}")
            for reason in got.reasons:
                print(f"    {reason}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.roles", description=__doc__)
    parser.add_argument("--rounds", type=int, default=20, help="timed passes over the set")
    parser.add_argument("--json", action="store_true", help="print only a JSON object")
    parser.add_argument("--errors", choices=SPLITS, help="also list the mistakes on a split")
    parser.add_argument("--data", type=Path, default=DATA_FILE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error("--rounds: expected at least 1")
    examples = load_examples(args.data)
    report = run(examples, args.rounds)
    if args.json:
        print(json.dumps({**asdict(report), "met": report.met()}, ensure_ascii=False))
    else:
        print_table(report)
    if args.errors:
        print_errors(examples, args.errors)
    return 0


if __name__ == "__main__":
    sys.exit(main())
