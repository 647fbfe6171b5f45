"""Preferences learned from an owner's history: the languages and frameworks they work with.

Deterministic and explainable on purpose. Two kinds of evidence count:

- a request (an operation's, or a gateway exchange's) that names a language or framework
  counts one for it (a file name such as ``app.py`` names its language);
- an operation whose workspace is mostly in a language counts one for that language
  (a workspace's main languages are those of at least a fifth of its source files, by
  extension; at most ``MAX_FILES`` files are looked at).

An item is learned once it has at least ``MIN_EVIDENCE``; each field keeps its
``MAX_LEARNED`` best, with their counts.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MIN_EVIDENCE = 2
MAX_LEARNED = 5
MAX_FILES = 2000  # files looked at per workspace
MAX_DEPTH = 8
MAIN_SHARE = 0.2  # the share of a workspace's source files that makes a main language
MAX_MAIN = 3
WORKSPACE_TTL = 600.0  # seconds a workspace's languages are reused
_SKIP_DIRS = {
    "node_modules", "venv", "__pycache__", "dist", "build", "target", "vendor",
    "site-packages", "bower_components",
}  # fmt: skip

# name: (file extensions, a pattern that names it in a request)
LANGUAGES: dict[str, tuple[tuple[str, ...], str]] = {
    "Python": ((".py", ".pyi"), r"\bpython3?\b|\b[\w/-]+\.pyi?\b"),
    "TypeScript": ((".ts", ".tsx"), r"\btypescript\b|\b[\w/-]+\.tsx?\b"),
    "JavaScript": (
        (".js", ".jsx", ".mjs", ".cjs"),
        r"\bjavascript\b|\bnode\.?js\b|\b[\w/-]+\.[mc]?jsx?\b",
    ),
    "Go": (
        (".go",),
        r"\bgolang\b|\b[\w/-]+\.go\b|(?-i:\b(?:in|with|using|to) Go\b|\bGo (?:code|module|service|program)s?\b)",
    ),
    "Rust": ((".rs",), r"\brust\b|\bcargo\b|\b[\w/-]+\.rs\b"),
    "Java": ((".java",), r"\bjava\b|\b[\w/-]+\.java\b"),
    "Kotlin": ((".kt", ".kts"), r"\bkotlin\b|\b[\w/-]+\.kts?\b"),
    "C#": ((".cs",), r"(?<![\w#])c#(?![\w#])|\bcsharp\b|\b[\w/-]+\.cs\b"),
    "C++": (
        (".cpp", ".cc", ".cxx", ".hpp", ".hh"),
        r"(?<![\w+])c\+\+(?![\w+])|\b[\w/-]+\.[ch]pp\b",
    ),
    "C": ((".c", ".h"), r"\b[\w/-]+\.c\b"),
    "Ruby": ((".rb",), r"\bruby\b|\b[\w/-]+\.rb\b"),
    "PHP": ((".php",), r"\bphp\b"),
    "Swift": ((".swift",), r"\bswift(?:ui)?\b"),
    "Scala": ((".scala",), r"\bscala\b"),
    "Elixir": ((".ex", ".exs"), r"\belixir\b|\b[\w/-]+\.exs?\b"),
    "Haskell": ((".hs",), r"\bhaskell\b"),
    "Dart": ((".dart",), r"\bdart\b"),
    "Lua": ((".lua",), r"\blua\b"),
    "Shell": ((".sh", ".bash"), r"\bbash\b|\bshell scripts?\b|\b[\w/-]+\.sh\b"),
    "SQL": ((".sql",), r"\bsql\b"),
}

FRAMEWORKS: dict[str, str] = {
    "Django": r"\bdjango\b",
    "Flask": r"\bflask\b",
    "FastAPI": r"\bfastapi\b",
    "React": r"(?-i:\bReact\b)|\breact\.?js\b",
    "Vue": r"\bvue(?:\.?js)?\b",
    "Angular": r"\bangular\b",
    "Svelte": r"\bsvelte(?:kit)?\b",
    "Next.js": r"\bnext\.?js\b",
    "Express": r"\bexpress\.?js\b|\bexpress (?:app|server|routes?|middleware)\b",
    "Spring": r"\bspring ?boot\b|\bspring framework\b",
    "Rails": r"\brails\b",
    "Laravel": r"\blaravel\b",
    ".NET": r"\basp\.net\b|\bdotnet\b|(?<!\w)\.net (?:core|framework)\b",
    "pytest": r"\bpytest\b",
    "Jest": r"\bjest\b",
    "SQLAlchemy": r"\bsqlalchemy\b",
    "Pydantic": r"\bpydantic\b",
    "LangChain": r"\blangchain\b",
    "LangGraph": r"\blanggraph\b",
    "pandas": r"\bpandas\b",
    "NumPy": r"\bnumpy\b",
    "PyTorch": r"\bpytorch\b|\btorch\b",
    "TensorFlow": r"\btensorflow\b",
    "Tailwind": r"\btailwind(?:css)?\b",
}

_LANGUAGE_RE = {name: re.compile(p, re.IGNORECASE) for name, (_, p) in LANGUAGES.items()}
_FRAMEWORK_RE = {name: re.compile(p, re.IGNORECASE) for name, p in FRAMEWORKS.items()}
_BY_EXTENSION = {ext: name for name, (exts, _) in LANGUAGES.items() for ext in exts}


def named_in(text: str) -> tuple[set[str], set[str]]:
    """The languages and the frameworks a request names."""
    languages = {name for name, pattern in _LANGUAGE_RE.items() if pattern.search(text)}
    frameworks = {name for name, pattern in _FRAMEWORK_RE.items() if pattern.search(text)}
    return languages, frameworks


def _source_files(root: Path) -> Counter[str]:
    """Files per language under ``root`` (hidden and vendored folders left out)."""
    found: Counter[str] = Counter()
    seen = 0
    stack = [(root, 0)]
    while stack and seen < MAX_FILES:
        folder, depth = stack.pop()
        try:
            with os.scandir(folder) as entries:
                listed = sorted(entries, key=lambda e: e.name)
        except OSError:
            continue
        for entry in listed:
            if entry.name.startswith("."):
                continue
            try:
                if entry.is_dir(follow_symlinks=False):
                    if depth < MAX_DEPTH and entry.name not in _SKIP_DIRS:
                        stack.append((Path(entry.path), depth + 1))
                    continue
                if not entry.is_file(follow_symlinks=False):
                    continue
            except OSError:
                continue
            seen += 1
            language = _BY_EXTENSION.get(os.path.splitext(entry.name)[1].lower())
            if language:
                found[language] += 1
            if seen >= MAX_FILES:
                break
    return found


_CACHE: dict[str, tuple[float, tuple[str, ...]]] = {}
_CACHE_LOCK = threading.Lock()


def workspace_languages(workspace: str) -> tuple[str, ...]:
    """The main languages of a workspace's files, most files first (none if it is gone)."""
    now = time.monotonic()
    with _CACHE_LOCK:
        cached = _CACHE.get(workspace)
        if cached is not None and now - cached[0] < WORKSPACE_TTL:
            return cached[1]
    root = Path(workspace)
    counts = _source_files(root) if root.is_dir() else Counter()
    total = sum(counts.values())
    main = tuple(
        name
        for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        if total and n / total >= MAIN_SHARE
    )[:MAX_MAIN]
    with _CACHE_LOCK:
        if len(_CACHE) >= 256:
            _CACHE.clear()
        _CACHE[workspace] = (now, main)
    return main


def learn(requests: Iterable[str], workspaces: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Learned ``languages`` and ``frameworks``, each item ``{name, evidence, sources}``.

    Args:
        requests: The texts of the owner's remembered requests (operations and gateway).
        workspaces: One workspace per remembered operation (``""`` for none).
    """
    sources: dict[str, dict[str, Counter[str]]] = {
        "languages": {"requests": Counter(), "workspaces": Counter()},
        "frameworks": {"requests": Counter()},
    }
    for text in requests:
        languages, frameworks = named_in(text)
        sources["languages"]["requests"].update(languages)
        sources["frameworks"]["requests"].update(frameworks)
    for workspace in workspaces:
        if workspace:
            sources["languages"]["workspaces"].update(workspace_languages(workspace))
    learned: dict[str, list[dict[str, Any]]] = {}
    for field, kinds in sources.items():
        totals: Counter[str] = Counter()
        for counts in kinds.values():
            totals.update(counts)
        items = [
            {
                "name": name,
                "evidence": n,
                "sources": {kind: counts[name] for kind, counts in kinds.items() if counts[name]},
            }
            for name, n in totals.items()
            if n >= MIN_EVIDENCE
        ]
        items.sort(key=lambda item: (-item["evidence"], item["name"]))
        learned[field] = items[:MAX_LEARNED]
    return learned
