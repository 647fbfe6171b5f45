"""Cutting files into search chunks that follow their structure."""

from __future__ import annotations

from pathlib import Path

from crewchief.knowledge.chunks import chunk_file
from crewchief.models.tokens import count_tokens

PY = '''"""A module."""

import os

LIMIT = 3


@decorated
def first(a, b):
    """Add."""
    return a + b


class Small:
    """Tiny."""

    def go(self):
        return 1


async def later():
    # waits
    await os.sleep(1)
'''


def _spans(chunks):  # noqa: ANN001, ANN202
    return [(c.start, c.end, c.symbol, c.kind) for c in chunks]


def test_python_definitions_are_chunks_with_their_decorators_and_names() -> None:
    chunks = chunk_file("pkg/mod.py", PY)
    assert _spans(chunks) == [
        (1, 5, "", "module"),
        (8, 11, "first", "function"),
        (14, 18, "Small", "class"),
        (21, 23, "later", "function"),
    ]
    assert chunks[1].text.startswith("@decorated\ndef first")
    assert all(c.path == "pkg/mod.py" for c in chunks)


def test_a_class_too_big_for_one_chunk_is_cut_at_its_methods() -> None:
    methods = "\n".join(
        f"    def m{i}(self):\n        return {i} + sum(range({i}))  # padding padding\n"
        for i in range(40)
    )
    text = f'class Big:\n    """Doc."""\n    x = 1\n\n{methods}'
    chunks = chunk_file("big.py", text, max_tokens=120)
    assert chunks[0].symbol == "Big" and chunks[0].kind == "class"
    assert chunks[0].text.startswith("class Big:")
    assert [c.symbol for c in chunks[1:4]] == ["Big.m0", "Big.m1", "Big.m2"]
    assert {c.kind for c in chunks[1:]} == {"method"}


def test_a_definition_larger_than_a_chunk_is_cut_into_runs_of_whole_lines() -> None:
    body = "\n".join(f"    total += compute_value_number_{i}(total)" for i in range(200))
    text = f"def huge(total):\n{body}\n    return total\n"
    chunks = chunk_file("huge.py", text, max_tokens=100)
    assert len(chunks) > 5 and {c.symbol for c in chunks} == {"huge"}
    assert chunks[0].start == 1 and chunks[-1].end == 202
    for a, b in zip(chunks, chunks[1:], strict=False):
        assert b.start == a.end + 1  # no line lost, none repeated
    assert all(count_tokens(c.text) <= 100 for c in chunks)


def test_markdown_is_cut_at_headings_and_named_by_their_path() -> None:
    text = "# Guide\nintro\n## Install\nrun it\n```sh\n# not a heading\n```\n## Use\ncall it\n"
    chunks = chunk_file("docs/guide.md", text)
    assert _spans(chunks) == [
        (1, 2, "Guide", "section"),
        (3, 7, "Guide > Install", "section"),
        (8, 9, "Guide > Use", "section"),
    ]


def test_typescript_and_go_are_cut_by_their_tree_sitter_parsers() -> None:
    ts = "export class Cart {\n  total(): number {\n    return 1;\n  }\n}\n\nfunction f() {}\n"
    assert [(c.symbol, c.kind) for c in chunk_file("cart.ts", ts)] == [
        ("Cart", "class"),
        ("f", "function"),
    ]
    go = "package main\n\nfunc Add(a int, b int) int {\n\treturn a + b\n}\n"
    assert [(c.symbol, c.kind) for c in chunk_file("add.go", go)][-1] == ("Add", "func")


def test_a_file_that_does_not_parse_and_plain_text_still_give_chunks() -> None:
    broken = "def ok():\n    return 1\n\ndef broken(:\n    pass\n"
    assert {c.symbol for c in chunk_file("b.py", broken)} >= {"ok", "broken"}
    text = "\n".join(f"line {i}" for i in range(50))
    chunks = chunk_file("notes.txt", text)
    assert [(c.start, c.end, c.kind) for c in chunks] == [(1, 50, "lines")]
    assert chunk_file("empty.py", "") == []


def test_every_line_of_real_code_is_in_exactly_one_chunk_of_bounded_size() -> None:
    root = Path(__file__).resolve().parents[2] / "crewchief"
    files = sorted(root.rglob("*.py"))
    assert len(files) > 100
    for path in files:
        text = path.read_text()
        chunks = chunk_file(str(path.relative_to(root)), text, max_tokens=300)
        lines = text.splitlines()
        covered = [0] * (len(lines) + 1)
        for c in chunks:
            assert 1 <= c.start <= c.end <= len(lines), (path, c)
            for n in range(c.start, c.end + 1):
                covered[n] += 1
            if c.end > c.start:  # one line longer than a chunk stays whole
                assert count_tokens(c.text) <= 300 + (c.end - c.start + 1), (path, c.symbol)
        for n, line in enumerate(lines, 1):
            assert covered[n] <= 1, (path, n)
            if line.strip():
                assert covered[n] == 1, (path, n, line)
