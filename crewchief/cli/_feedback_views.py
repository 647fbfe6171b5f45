"""How ``crewchief feedback`` prints: a rating, a list of them, the summary table, an export."""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from typing import Any

EXIT_OK = 0


def rating_text(record: Any) -> str:
    if record.thumb is not None:
        return f"thumbs {record.thumb}"
    return f"{record.stars} star" + ("s" if record.stars != 1 else "")


def target_text(record: Any) -> str:
    if record.target == "response":
        return f"response {record.response_id}"
    if record.target == "task":
        return f"task {record.task} (version {record.task_version}) of {record.operation_id}"
    return f"operation {record.operation_id}"


def print_saved(saved: Any) -> None:
    extra = ", with a correction" if saved.correction else ""
    again = " (replaced the earlier rating)" if saved.replaced else ""
    print(f"rated {target_text(saved)}: {rating_text(saved)}{extra}{again}")


def print_list(records: list[Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    out = _console(Console)
    table = Table(box=None)
    for name in ("when", "target", "rating", "score", "route", "model", "correction"):
        table.add_column(name, no_wrap=name != "correction")
    for r in records:
        correction = (r.correction or "").replace("\n", " ")
        table.add_row(
            f"{r.updated_at:%Y-%m-%d %H:%M}", target_text(r), rating_text(r), f"{r.score:.2f}",
            r.route or "", r.model or "", correction[:60] + ("…" if len(correction) > 60 else ""),
        )  # fmt: skip
    out.print(table)


def _mean(group: Any) -> str:
    return "" if group.mean_score is None else f"{group.mean_score:.2f}"


def _share(group: Any) -> str:
    return "" if group.positive_share is None else f"{group.positive_share:.0%}"


def print_summary(summary: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    out = _console(Console)
    totals = summary.totals
    table = Table(box=None, show_footer=True)
    table.add_column(summary.by or "", footer="total", no_wrap=True)
    table.add_column("ratings", justify="right", footer=f"{totals.count:,}")
    table.add_column("mean", justify="right", footer=_mean(totals))
    table.add_column("positive", justify="right", footer=_share(totals))
    table.add_column("corrections", justify="right", footer=f"{totals.corrections:,}")
    for row in summary.rows:
        group = "(none)" if row.group is None else str(row.group)
        table.add_row(group, f"{row.count:,}", _mean(row), _share(row), f"{row.corrections:,}")
    out.print(table)
    out.print(simplicity_line(summary.simplicity), style="dim", highlight=False)


def simplicity_line(simplicity: Any) -> str:
    r = simplicity.correlation
    if r is None:
        said = f"simplicity score and rating: too few or too alike to correlate (n={simplicity.n})"
    else:
        way = "simpler requests rated better" if r > 0 else "simpler requests rated worse"
        said = f"simplicity score and rating: r = {r:+.2f} over {simplicity.n} ratings ({way})"
    paths = [
        f"{name}: mean {_mean(group)} of {group.count}"
        for name, group in (
            ("fast path", simplicity.by_path.fast),
            ("planned", simplicity.by_path.planned),
        )  # fmt: skip
        if group.count
    ]
    return " · ".join([said, *paths])


def print_export(args: argparse.Namespace, pairs: list[dict[str, Any]]) -> int:
    """Write the pairs as JSON Lines to ``--output`` (or standard output); say how many of
    each source on standard error."""
    lines = "".join(json.dumps(pair, ensure_ascii=False) + "\n" for pair in pairs)
    if args.output is None:
        sys.stdout.write(lines)
    else:
        args.output.write_text(lines, encoding="utf-8")
    sources = Counter(pair["source"] for pair in pairs)
    counted = ", ".join(f"{n} {source.replace('_', ' ')}" for source, n in sorted(sources.items()))
    where = f" to {args.output}" if args.output is not None else ""
    print(
        f"wrote {len(pairs)} pairs{where}" + (f" ({counted})" if counted else ""), file=sys.stderr
    )
    return EXIT_OK


def _console(console: Any) -> Any:
    out = console(soft_wrap=True)
    if not out.is_terminal:  # a pipe or a file: whole ids and model names, never cut
        out.width = 240
    return out
