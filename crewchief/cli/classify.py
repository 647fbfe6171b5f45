"""``crewchief classify`` and ``crewchief calibrate``: the simplicity detector from the shell.

Neither command touches the database, a model provider or LangGraph, so both
start in a fraction of a second.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import IO, Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


def add_parsers(sub: Any) -> None:
    classify = sub.add_parser(
        "classify",
        help="score requests from JSON lines: route, tier, reasons (and metrics when labelled)",
        description='Reads JSON lines {"text": ...} from FILE or stdin and writes one JSON line '
        'per input: {"score", "route", "tier", "reasons"}. When lines carry a "label" '
        "(fast|plan), accuracy, precision/recall per route and a confusion matrix follow on "
        "stderr.",
    )
    classify.add_argument("file", nargs="?", help="JSON lines file (default: stdin)")
    classify.add_argument(
        "--threshold", type=float, help="fast-path threshold (default: from config, 0.7)"
    )
    classify.add_argument(
        "--metrics-json", metavar="FILE", help="also write the metrics as JSON to FILE"
    )

    calibrate = sub.add_parser(
        "calibrate",
        help="pick the fast-path threshold for a target share of traffic or a target precision",
    )
    calibrate.add_argument(
        "file",
        nargs="?",
        help="JSON lines of requests (labels needed for --precision); "
        "default: the requests of recorded operations",
    )
    target = calibrate.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--fast-share", type=float, metavar="S", help="send at most this share (0-1) fast"
    )
    target.add_argument(
        "--precision",
        type=float,
        metavar="P",
        help="requests sent fast must be simple this share (0-1) of the time",
    )
    calibrate.add_argument(
        "--history", type=int, default=1000, metavar="N", help="recorded operations to use (1000)"
    )
    calibrate.add_argument(
        "--write", action="store_true", help="save the threshold to the config file"
    )


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return EXIT_USAGE


def _open_input(path: str | None) -> IO[str] | None:
    if path and path != "-":
        return Path(path).open(encoding="utf-8")
    if sys.stdin is None or sys.stdin.isatty():
        return None
    return sys.stdin


def classify(settings: Any, args: argparse.Namespace) -> int:
    from crewchief.simplicity import SimplicityDetector
    from crewchief.simplicity.data import LineError, iter_lines, parse_line
    from crewchief.simplicity.metrics import Metrics

    threshold = settings.simplicity_threshold if args.threshold is None else args.threshold
    try:
        detector = SimplicityDetector(
            threshold=threshold, deep_below=settings.simplicity_deep_below
        )
        source = _open_input(args.file)
    except (ValueError, OSError) as exc:
        return _fail(f"classify: {exc}")
    if source is None:
        return _fail("classify: give a FILE or pipe JSON lines on stdin")
    metrics, errors, lines = Metrics(), 0, 0
    out = sys.stdout
    with source:
        for number, raw in iter_lines(source):
            lines += 1
            try:
                example = parse_line(raw, number)
            except LineError as exc:
                errors += 1
                print(f"error: {exc}", file=sys.stderr)
                out.write(json.dumps({"error": {"line": number, "message": exc.detail}}) + "\n")
                continue
            decision = detector.decide(example.text)
            row: dict[str, Any] = {
                "score": decision.score,
                "route": decision.route,
                "tier": decision.tier,
                "reasons": decision.reasons,
            }
            if example.label is not None:
                metrics.add(example.label, decision.route)
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    out.flush()
    if metrics.total:
        print(
            f"\n{metrics.total} of {lines} lines labelled · threshold {threshold:g}",
            file=sys.stderr,
        )
        print(metrics.report(), file=sys.stderr)
        if args.metrics_json:
            data = {"threshold": threshold, **metrics.as_dict()}
            Path(args.metrics_json).write_text(json.dumps(data, indent=2) + "\n")
    if errors:
        print(f"{errors} of {lines} lines could not be classified", file=sys.stderr)
    return EXIT_FAILED if errors else EXIT_OK


def _sample(settings: Any, args: argparse.Namespace) -> tuple[list[str], list[str] | None, str]:
    """The texts (and labels, when every line has one) to calibrate on, and where they came from."""
    if args.file:
        from crewchief.simplicity.data import load_examples

        examples = load_examples(Path(args.file), labelled=False)
        labels = [e.label for e in examples]
        return (
            [e.text for e in examples],
            [str(label) for label in labels] if all(labels) else None,
            args.file,
        )
    import asyncio

    from crewchief.client.facade import Crewchief

    async def recorded() -> list[str]:
        async with Crewchief(settings) as chief:
            return [item.request for item in await chief.list(limit=args.history)]

    texts = asyncio.run(recorded())
    return texts, None, f"the last {len(texts)} recorded operations"


def calibrate(settings: Any, args: argparse.Namespace, config_file: Path | None) -> int:
    from crewchief.simplicity import SimplicityDetector
    from crewchief.simplicity import calibrate as cal

    try:
        texts, labels, where = _sample(settings, args)
    except (ValueError, OSError) as exc:
        return _fail(f"calibrate: {exc}")
    if not texts:
        return _fail("calibrate: no requests to calibrate on (give a JSON lines FILE)")
    detector = SimplicityDetector(deep_below=settings.simplicity_deep_below)
    scores = [detector.score(t) for t in texts]
    try:
        if args.precision is not None:
            if labels is None:
                return _fail("calibrate: --precision needs a label on every line of FILE")
            result = cal.for_precision(scores, labels, args.precision)
        else:
            result = cal.for_fast_share(scores, args.fast_share, labels)
    except cal.CalibrationError as exc:
        return _fail(f"calibrate: {exc}")
    _print_calibration(result, scores, labels, where, settings.simplicity_threshold)
    if args.write:
        path = config_file or Path("crewchief.toml")
        cal.write_threshold(path, result.threshold)
        print(f"wrote simplicity_threshold = {result.threshold:g} to {path}")
        if os.environ.get("CREWCHIEF_SIMPLICITY_THRESHOLD"):
            print(
                "note: CREWCHIEF_SIMPLICITY_THRESHOLD is set and overrides the file",
                file=sys.stderr,
            )
    return EXIT_OK


def _print_calibration(
    result: Any, scores: list[float], labels: list[str] | None, where: str, current: float
) -> None:
    from crewchief.simplicity.calibrate import sweep

    print(f"calibrating on {len(scores)} requests from {where} · target: {result.target}")
    points = sorted({0.3, 0.5, 0.6, 0.7, 0.8, 0.9, current, result.threshold})
    head = f"{'threshold':>10}{'fast share':>12}"
    if labels:
        head += f"{'fast prec.':>12}{'fast recall':>13}{'accuracy':>10}"
    print(head)
    for t, share, m in sweep(scores, labels, points):
        mark = "  ← chosen" if t == result.threshold else "  (current)" if t == current else ""
        line = f"{t:>10.4g}{share:>12.1%}"
        if m is not None:
            line += f"{m.precision('fast'):>12.1%}{m.recall('fast'):>13.1%}{m.accuracy:>10.1%}"
        print(line + mark)
    print(f"threshold {result.threshold:g}: {result.fast_share:.1%} of requests take the fast path")
