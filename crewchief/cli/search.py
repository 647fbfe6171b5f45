"""``crewchief search QUERY --workspace DIR``: hybrid code search from the command line."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def add_parser(sub: Any) -> None:
    search = sub.add_parser(
        "search",
        help="search a workspace's code by keywords and meaning (hybrid: BM25 + vectors)",
        description="Indexes the workspace on first use (functions, classes and document"
        " sections, kept fresh incrementally), then prints the best hits with their scores"
        " and why each matched.",
    )
    search.add_argument("query", help="what to look for: words, a question, or identifiers")
    search.add_argument(
        "--workspace", "-w", metavar="DIR", default=".", help="the directory (default: here)"
    )
    search.add_argument("-k", type=int, default=10, help="how many hits (1-50, default 10)")
    search.add_argument(
        "--mode", choices=["hybrid", "bm25", "vector"], default="hybrid", help="the ranking"
    )
    search.add_argument("--glob", help="only files matching this glob, e.g. 'src/**/*.py'")
    search.add_argument(
        "--lines", type=int, default=3, metavar="N", help="lines of each hit to show (default 3)"
    )
    search.add_argument(
        "--owner",
        help="search this API key owner's index (default: the library's, no owner)",
    )
    search.add_argument(
        "--no-refresh",
        action="store_true",
        help="search the index as it is, without looking for changed files",
    )
    search.add_argument("--json", action="store_true", help="print the result as JSON")


def run(settings: Any, args: argparse.Namespace) -> int:
    from crewchief.client.validate import workspace_directory
    from crewchief.errors import InvalidRequest
    from crewchief.knowledge.search import SearchError, code_search

    search = code_search(settings)
    try:
        root = workspace_directory(args.workspace)
        result = search.search(
            args.owner,
            root,
            args.query,
            k=args.k,
            mode=args.mode,
            glob=args.glob,
            refresh="never" if args.no_refresh else "now",
        )
    except (InvalidRequest, SearchError) as exc:
        print(f"crewchief search: {exc}", file=sys.stderr)
        return 2
    finally:
        search.close()
    if args.json:
        print(json.dumps(result.as_dict(), ensure_ascii=False))
        return 0
    print(_header(result))
    print(result.render(lines=max(0, args.lines)))
    return 0


def _header(result: Any) -> str:
    index = f"{result.files:,} files, {result.chunks:,} chunks"
    if result.refresh is not None and result.refresh.touched:
        r = result.refresh
        index += (
            f"; refreshed in {r.seconds:.2f} s ({r.added} added, {r.changed} changed,"
            f" {r.removed} removed)"
        )
    vectors = "" if result.vectors else " (no vectors here: BM25 only)"
    return f"{result.mode} search of {result.workspace}: {index}{vectors}, {result.ms:.0f} ms"
