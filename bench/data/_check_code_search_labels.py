"""Check the labelled code-search queries in `code_search_httpx.jsonl`.

The dataset is a retrieval benchmark for code search over the source of the `httpx` package,
version 0.29.0, as installed in site-packages. Each line is a JSON object with an `id`, a
`query` phrased the way a developer would type it into a code search box, a `kind`
(`behaviour`, `concept`, `identifier` or `error`) and a `relevant` list of the 1 to 3
definitions that answer the query. A definition is named by its `path` relative to
site-packages (e.g. `httpx/_client.py`), its qualified `symbol` (`function`, `Class`,
`Class.method`, or the name of a module-level assignment) and its `lines`.

`lines` is `[first, last]`, 1-based and inclusive, exactly as Python's `ast` reports the
definition: `first` is the line of the first decorator when there are decorators and
`node.lineno` otherwise; `last` is `node.end_lineno`. A property getter and its setter share
one qualified name; the line span tells which of the two is meant.

Usage, with the interpreter whose site-packages holds httpx:

    python bench/data/_check_code_search_labels.py              # validate; exit 1 on problems
    python bench/data/_check_code_search_labels.py --fix-lines  # recompute spans, then validate

`--fix-lines` rewrites `lines` from the installed source. When a name has several definitions
it keeps the one starting at the recorded line, or else takes the first one.
"""

from __future__ import annotations

import argparse
import ast
import importlib.metadata
import json
import sys
from collections import defaultdict
from pathlib import Path

DATASET = Path(__file__).with_name("code_search_httpx.jsonl")
HTTPX_VERSION = "0.29.0"
KINDS = {"behaviour", "concept", "identifier", "error"}
MIN_QUERIES = 100
MAX_RELEVANT = 3

Span = tuple[int, int]


def collect_definitions(source: str) -> dict[str, list[Span]]:
    """Map each qualified name in a module to the spans of its definitions, in source order."""
    definitions: dict[str, list[Span]] = defaultdict(list)

    def visit(body: list[ast.stmt], prefix: str) -> None:
        for node in body:
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = prefix + node.name
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                definitions[name].append((first, node.end_lineno or node.lineno))
                if isinstance(node, ast.ClassDef):
                    visit(node.body, name + ".")
            elif not prefix and isinstance(node, ast.Assign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        span = (node.lineno, node.end_lineno or node.lineno)
                        definitions[target.id].append(span)

    visit(ast.parse(source).body, "")
    return definitions


class SourceIndex:
    """Parses each httpx module once and looks definitions up by qualified name."""

    def __init__(self) -> None:
        self._dist = importlib.metadata.distribution("httpx")
        self._cache: dict[str, dict[str, list[Span]] | None] = {}

    def definitions(self, path: str) -> dict[str, list[Span]] | None:
        if path not in self._cache:
            file = Path(str(self._dist.locate_file(path)))
            ok = path.startswith("httpx/") and path.endswith(".py") and file.is_file()
            self._cache[path] = collect_definitions(file.read_text("utf-8")) if ok else None
        return self._cache[path]

    def spans(self, path: str, symbol: str) -> list[Span] | None:
        definitions = self.definitions(path)
        if definitions is None:
            return None
        return definitions.get(symbol, [])


def load_records(lines: list[str], problems: list[str]) -> list[dict]:
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: invalid JSON ({exc})")
            continue
        if not isinstance(record, dict):
            problems.append(f"line {number}: not a JSON object")
            continue
        records.append(record)
    return records


def check_record(record: dict, index: SourceIndex, problems: list[str]) -> None:
    qid = record.get("id", "?")
    if set(record) != {"id", "query", "kind", "relevant"}:
        problems.append(f"{qid}: keys are {sorted(record)}")
    if record.get("kind") not in KINDS:
        problems.append(f"{qid}: invalid kind {record.get('kind')!r}")
    if not isinstance(record.get("query"), str) or not record["query"].strip():
        problems.append(f"{qid}: empty or missing query")
    relevant = record.get("relevant")
    if not isinstance(relevant, list) or not 1 <= len(relevant) <= MAX_RELEVANT:
        problems.append(f"{qid}: relevant must list 1 to {MAX_RELEVANT} definitions")
        return
    seen: set[tuple[str, str, tuple[int, ...]]] = set()
    for entry in relevant:
        if not isinstance(entry, dict):
            problems.append(f"{qid}: relevant entry is not an object: {entry!r}")
            continue
        key = (entry.get("path"), entry.get("symbol"), tuple(entry.get("lines") or ()))
        if key in seen:
            problems.append(f"{qid}: duplicate relevant entry {key}")
        seen.add(key)
        check_entry(qid, entry, index, problems)


def check_entry(qid: str, entry: dict, index: SourceIndex, problems: list[str]) -> None:
    path, symbol, lines = entry.get("path"), entry.get("symbol"), entry.get("lines")
    where = f"{qid}: {path}::{symbol}"
    if set(entry) != {"path", "symbol", "lines"}:
        problems.append(f"{where}: keys are {sorted(entry)}")
    if not isinstance(path, str) or not isinstance(symbol, str):
        problems.append(f"{where}: path and symbol must be strings")
        return
    spans = index.spans(path, symbol)
    if spans is None:
        problems.append(f"{where}: no such httpx source file")
        return
    if not spans:
        problems.append(f"{where}: symbol not defined in this file")
        return
    valid_lines = isinstance(lines, list) and len(lines) == 2
    valid_lines = valid_lines and all(type(n) is int for n in lines)
    if not valid_lines or tuple(lines) not in spans:
        expected = " or ".join(f"[{a}, {b}]" for a, b in spans)
        problems.append(f"{where}: lines {lines!r} do not match {expected}")


def check_dataset(records: list[dict], index: SourceIndex, problems: list[str]) -> None:
    ids = [record.get("id") for record in records]
    for qid in sorted({i for i in ids if ids.count(i) > 1}, key=str):
        problems.append(f"duplicate id {qid!r}")
    queries: dict[str, str] = {}
    for record in records:
        text = " ".join(str(record.get("query", "")).lower().split())
        if text in queries:
            problems.append(f"{record.get('id')}: same query as {queries[text]}")
        queries.setdefault(text, str(record.get("id")))
        check_record(record, index, problems)
    if len(records) < MIN_QUERIES:
        problems.append(f"only {len(records)} queries, expected at least {MIN_QUERIES}")


def fix_lines(records: list[dict], index: SourceIndex) -> None:
    for record in records:
        for entry in record.get("relevant") or []:
            spans = index.spans(entry.get("path", ""), entry.get("symbol", ""))
            if not spans:
                continue
            recorded = entry.get("lines") or [None]
            chosen = next((s for s in spans if s[0] == recorded[0]), spans[0])
            entry["lines"] = list(chosen)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fix-lines", action="store_true", help="recompute spans first")
    args = parser.parse_args(argv)

    problems: list[str] = []
    version = importlib.metadata.version("httpx")
    if version != HTTPX_VERSION:
        problems.append(f"httpx {version} is installed, the labels are for {HTTPX_VERSION}")

    index = SourceIndex()
    records = load_records(DATASET.read_text("utf-8").splitlines(), problems)
    if args.fix_lines and not problems:
        fix_lines(records, index)
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        DATASET.write_text(text, "utf-8")
    check_dataset(records, index, problems)

    for problem in problems:
        print(problem, file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in {DATASET.name}", file=sys.stderr)
        return 1
    kinds = {kind: sum(r["kind"] == kind for r in records) for kind in sorted(KINDS)}
    files = {e["path"] for r in records for e in r["relevant"]}
    print(f"{DATASET.name}: {len(records)} queries {kinds}, {len(files)} files, all spans match")
    return 0


if __name__ == "__main__":
    sys.exit(main())
