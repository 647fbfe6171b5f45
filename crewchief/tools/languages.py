"""Languages the file tools recognise: names, comment syntax and parsers, by file name."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath

_C_BLOCK = (("/*", "*/"),)


@dataclass(frozen=True, slots=True)
class Language:
    """How one language writes comments, and which parser reads its definitions."""

    name: str
    line_comments: tuple[str, ...] = ()
    block_comments: tuple[tuple[str, str], ...] = ()
    # "python" (the stdlib ast), a tree-sitter grammar name, or None (no symbol parser).
    parser: str | None = None


_C_LIKE = {"line_comments": ("//",), "block_comments": _C_BLOCK}
_HASH = {"line_comments": ("#",)}

PYTHON = Language("Python", ("#",), parser="python")
_LANGUAGES = [
    (PYTHON, (".py", ".pyi", ".pyw")),
    (Language("JavaScript", **_C_LIKE, parser="javascript"), (".js", ".mjs", ".cjs", ".jsx")),
    (Language("TypeScript", **_C_LIKE, parser="typescript"), (".ts", ".mts", ".cts")),
    (Language("TSX", **_C_LIKE, parser="tsx"), (".tsx",)),
    (Language("Rust", **_C_LIKE, parser="rust"), (".rs",)),
    (Language("Go", **_C_LIKE, parser="go"), (".go",)),
    (Language("C", **_C_LIKE), (".c", ".h")),
    (Language("C++", **_C_LIKE), (".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx")),
    (Language("C#", **_C_LIKE), (".cs",)),
    (Language("Java", **_C_LIKE), (".java",)),
    (Language("Kotlin", **_C_LIKE), (".kt", ".kts")),
    (Language("Swift", **_C_LIKE), (".swift",)),
    (Language("Scala", **_C_LIKE), (".scala",)),
    (Language("PHP", ("//", "#"), _C_BLOCK), (".php",)),
    (Language("CSS", block_comments=_C_BLOCK), (".css",)),
    (Language("SCSS", **_C_LIKE), (".scss", ".sass", ".less")),
    (Language("Ruby", **_HASH), (".rb", ".rake")),
    (Language("Shell", **_HASH), (".sh", ".bash", ".zsh")),
    (Language("Perl", **_HASH), (".pl", ".pm")),
    (Language("R", **_HASH), (".r",)),
    (Language("YAML", **_HASH), (".yaml", ".yml")),
    (Language("TOML", **_HASH), (".toml",)),
    (Language("INI", ("#", ";")), (".ini", ".cfg", ".conf")),
    (Language("Makefile", **_HASH), (".mk",)),
    (Language("Dockerfile", **_HASH), (".dockerfile",)),
    (Language("SQL", ("--",), _C_BLOCK), (".sql",)),
    (Language("Lua", ("--",), (("--[[", "]]"),)), (".lua",)),
    (Language("Haskell", ("--",), (("{-", "-}"),)), (".hs",)),
    (Language("HTML", block_comments=(("<!--", "-->"),)), (".html", ".htm", ".xml", ".svg")),
    (Language("Markdown"), (".md", ".markdown", ".rst")),
    (Language("JSON"), (".json",)),
    (Language("Text"), (".txt",)),
]
_BY_SUFFIX = {suffix: lang for lang, suffixes in _LANGUAGES for suffix in suffixes}
_BY_NAME = {
    "Makefile": _BY_SUFFIX[".mk"],
    "makefile": _BY_SUFFIX[".mk"],
    "GNUmakefile": _BY_SUFFIX[".mk"],
    "Dockerfile": _BY_SUFFIX[".dockerfile"],
}
# Interpreters named on a "#!" line, for scripts without a suffix.
_SHEBANG = {"python": PYTHON, "sh": _BY_SUFFIX[".sh"], "bash": _BY_SUFFIX[".sh"]}
_SHEBANG.update({"node": _BY_SUFFIX[".js"], "ruby": _BY_SUFFIX[".rb"], "perl": _BY_SUFFIX[".pl"]})

UNKNOWN = Language("unknown")


def detect(path: str, first_line: str = "") -> Language:
    """The language of a file, by its name, else by its ``#!`` line; UNKNOWN if neither."""
    pure = PurePosixPath(path)
    found = _BY_NAME.get(pure.name) or _BY_SUFFIX.get(pure.suffix.lower())
    if found:
        return found
    if first_line.startswith("#!"):
        words = first_line[2:].replace("/", " ").split()
        for word in reversed(words):
            interpreter = word.rstrip("0123456789.")
            if interpreter in _SHEBANG:
                return _SHEBANG[interpreter]
    return UNKNOWN


def with_parser() -> list[str]:
    """Names of the languages ``extract_symbols`` can parse."""
    return [lang.name for lang, _ in _LANGUAGES if lang.parser]


def parser_suffixes() -> list[str]:
    """File suffixes of the languages ``extract_symbols`` can parse."""
    return [suffix for lang, suffixes in _LANGUAGES if lang.parser for suffix in suffixes]
