"""``summarize_file``: what a file is about, in a few lines instead of the whole text.

The summary holds the size, line count and language, the imports, classes
(types), functions and TODO/FIXME notes found by per-language patterns, each
list capped with "+K more", then the first and last lines with content,
numbered (blank, bracket-only and import lines are left out: they cost tokens
and say nothing the lists do not). Patterns are plain regexes, so a file that
does not parse is still summarized.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable

from crewchief.tools._fs import split_lines
from crewchief.tools.languages import Language

HEAD_LINES = 4
TAIL_LINES = 2
_MAX_LINE = 80  # characters of one quoted line
_NOISE = " \t{}()[];,/#*-="  # a line of only these is not worth showing
_CAPS = {"imports": 8, "classes": 10, "types": 10, "functions": 12, "headings": 12}
_MAX_TODOS = 4
_M = re.MULTILINE

# Per language, (label, pattern): group 1 of each match is the name shown.
_JS = [
    ("imports", r"^[ \t]*import\s+(?:[^'\"]*?\s+from\s+)?['\"]([^'\"]+)['\"]"),
    ("imports", r"\brequire\(\s*['\"]([^'\"]+)['\"]\s*\)"),
    ("classes", r"^[ \t]*(?:export\s+)?(?:default\s+)?(?:abstract\s+)?class\s+(\w+)"),
    ("functions", r"^[ \t]*(?:export\s+)?(?:default\s+)?(?:async\s+)?function\s*\*?\s*(\w+)"),
    (
        "functions",
        r"^[ \t]*(?:export\s+)?(?:const|let|var)\s+(\w+)\s*=\s*(?:async\s+)?"
        r"(?:function\b|\([^)]*\)\s*(?::[^=]+)?=>|\w+\s*=>)",
    ),
]
_TS = [
    *_JS,
    ("types", r"^[ \t]*(?:export\s+)?(?:declare\s+)?(?:interface|type|enum)\s+(\w+)"),
]
_C_FAMILY = [
    ("imports", r"^[ \t]*#\s*include\s*[<\"]([^>\"]+)[>\"]"),
    ("imports", r"^[ \t]*(?:import|using)\s+(?:static\s+)?([\w.]+)\s*;"),
    ("classes", r"^[ \t]*(?:[\w@]+\s+)*?(?:class|struct|interface|enum|record)\s+(\w+)"),
]
_PATTERNS: dict[str, list[tuple[str, str]]] = {
    "Python": [
        # Each import pattern runs to the end of the statement, so its lines are known.
        ("imports", r"^[ \t]*from[ \t]+([.\w]+)[ \t]+import[ \t]*(?:\([^)]*\)|[^\n]*)"),
        ("imports", r"^[ \t]*import[ \t]+([\w.]+)[^\n]*"),
        ("classes", r"^class\s+(\w+)"),
        ("functions", r"^(?:async\s+)?def\s+(\w+)"),
    ],
    "JavaScript": _JS,
    "TypeScript": _TS,
    "TSX": _TS,
    "Rust": [
        (
            "imports",
            r"^[ \t]*(?:pub(?:\([^)]*\))?\s+)?use\s+([\w:]+?)(?:::)?(?:\{|;|\s|$)[^;]*;?",
        ),
        ("types", r"^[ \t]*(?:pub(?:\([^)]*\))?\s+)?(?:struct|enum|trait|union|type)\s+(\w+)"),
        (
            "functions",
            r"^[ \t]*(?:pub(?:\([^)]*\))?\s+)?(?:const\s+)?(?:async\s+)?(?:unsafe\s+)?"
            r"(?:extern\s+\"[^\"]*\"\s+)?fn\s+(\w+)",
        ),
    ],
    "Go": [
        ("imports", r"^import\s+(?:\w+\s+)?\"([^\"]+)\""),
        ("types", r"^type\s+(\w+)"),
        ("functions", r"^func\s+(?:\([^)]*\)\s*)?(\w+)"),
    ],
    "C": _C_FAMILY,
    "C++": _C_FAMILY,
    "C#": _C_FAMILY,
    "Java": _C_FAMILY,
    "Kotlin": [("imports", r"^[ \t]*import\s+([\w.]+)"), *_C_FAMILY[2:]],
    "Ruby": [
        ("imports", r"^[ \t]*require(?:_relative)?\s+['\"]([^'\"]+)['\"]"),
        ("classes", r"^[ \t]*(?:class|module)\s+([\w:]+)"),
        ("functions", r"^[ \t]*def\s+([\w.?!]+)"),
    ],
    "Shell": [("functions", r"^[ \t]*(?:function\s+)?([\w-]+)\s*\(\)\s*\{?")],
    "Markdown": [("headings", r"^#{1,3}\s+(.+?)\s*#*$")],
}
_GO_IMPORT_BLOCK = re.compile(r"^import\s*\((.*?)^\)", _M | re.DOTALL)
_GO_IMPORT_LINE = re.compile(r"^[ \t]*(?:[\w.]+\s+)?\"([^\"]+)\"", _M)
_METHODS = re.compile(r"^[ \t]+(?:async\s+)?def\s+\w+", _M)
_TODO = re.compile(r"\b(TODO|FIXME|XXX|HACK)\b[:\s]*(.*)")
_COMPILED = {
    lang: [(label, re.compile(pattern, _M)) for label, pattern in patterns]
    for lang, patterns in _PATTERNS.items()
}


def summarize(shown: str, text: str, size: int, language: Language) -> str:
    """The summary of one file's ``text`` (``size`` bytes) shown to the model."""
    lines = split_lines(text)
    out = [f"{shown}: {language.name}, {len(lines)} lines, {size:,} bytes"]
    found, import_lines = _scan(text, language)
    out += found
    out += _todos(lines)
    # Imports are listed above, and blank or bracket-only lines say nothing: the start
    # and end show the first and last lines with content, numbered for read_file ranges.
    numbered = [
        (n, line) for n, line in enumerate(lines, 1) if line.strip(_NOISE) and n not in import_lines
    ]
    head = numbered[:HEAD_LINES]
    tail = numbered[max(len(head), len(numbered) - TAIL_LINES) :]
    if head:
        out.append("start:")
        out += [f"{n}: {_clip(line)}" for n, line in head]
    if tail:
        out.append("end:")
        out += [f"{n}: {_clip(line)}" for n, line in tail]
    return "\n".join(out)


def _scan(text: str, language: Language) -> tuple[list[str], set[int]]:
    """Lines ``label (n): a L3, b L9, +K more`` per pattern label; the import lines."""
    found: dict[str, dict[str, int]] = {}
    import_lines: set[int] = set()
    starts = [0] + [m.end() for m in re.finditer("\n", text)]
    for label, pattern in _COMPILED.get(language.name, ()):
        names = found.setdefault(label, {})
        for match in pattern.finditer(text):
            line = bisect.bisect_right(starts, match.start())
            names.setdefault(match.group(1).strip(), line)
            if label == "imports":
                import_lines.update(range(line, bisect.bisect_right(starts, match.end() - 1) + 1))
    if language.name == "Go":
        for block in _GO_IMPORT_BLOCK.finditer(text):
            imports = found.setdefault("imports", {})
            for match in _GO_IMPORT_LINE.finditer(block.group(1)):
                imports.setdefault(match.group(1), 0)
            first = bisect.bisect_right(starts, block.start())
            import_lines.update(range(first, bisect.bisect_right(starts, block.end() - 1) + 1))
    out = []
    for label, names in found.items():
        if not names:
            continue
        names = dict(sorted(names.items(), key=lambda item: item[1]))  # in file order
        # Imports read best as a plain list; definitions carry their line numbers.
        shown = names if label == "imports" else {f"{n} L{line}": line for n, line in names.items()}
        out.append(f"{label} ({len(names)}): {_capped(shown, _CAPS.get(label, 10))}")
    if language.name == "Python":
        methods = len(_METHODS.findall(text))
        if methods:
            out.append(f"methods: {methods}")
    return out, import_lines


def _todos(lines: list[str]) -> list[str]:
    notes = []
    for number, line in enumerate(lines, 1):
        match = _TODO.search(line)
        if match:
            notes.append(f"L{number} {match.group(1)} {match.group(2).strip()[:60]}".rstrip())
    if not notes:
        return []
    more = f" +{len(notes) - _MAX_TODOS} more" if len(notes) > _MAX_TODOS else ""
    return [f"TODO/FIXME ({len(notes)}){more}:", *notes[:_MAX_TODOS]]


def _capped(items: Iterable[str], cap: int) -> str:
    items = list(items)
    text = ", ".join(items[:cap])
    return f"{text}, +{len(items) - cap} more" if len(items) > cap else text


def _clip(line: str) -> str:
    line = line.rstrip()
    return line if len(line) <= _MAX_LINE else line[: _MAX_LINE - 1] + "…"
