"""``extract_symbols``: the definitions of a file, from a real parser, without the bodies.

Python is read with the stdlib :mod:`ast`; JavaScript, TypeScript/TSX, Rust and
Go with tree-sitter grammars, loaded on first use. Each symbol is one line:
its line number and its signature (the declaration up to the body), indented
under the class, impl, trait or interface that holds it. A file that does not
parse still gives what can be found, with a note saying so.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

from crewchief.tools._fs import ToolError
from crewchief.tools.languages import Language, with_parser

MAX_SIGNATURE = 160
# Default values longer than this are shown as "..." in Python signatures.
_MAX_DEFAULT = 24
_PY_HEADER_END = re.compile(r"^(.*\)(?:\s*->[^:]*)?)\s*:")
_PY_FALLBACK = re.compile(r"^([ \t]*)((?:async[ \t]+)?def|class)[ \t]+(\w+)(.*)$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Symbol:
    """One definition: where it starts (and ends, 0 when unknown), how deep it is nested,
    and its signature."""

    line: int
    depth: int
    kind: str
    name: str
    signature: str
    end: int = 0

    def render(self) -> str:
        return f"{'  ' * self.depth}{self.line} {self.signature}"


def extract(text: str, language: Language) -> tuple[list[Symbol], str | None]:
    """The symbols of one file and a note when parsing was incomplete.

    Raises:
        ToolError: the language has no parser (the message lists those that do),
            or its tree-sitter grammar package is not installed.
    """
    if language.parser is None:
        supported = ", ".join(with_parser())
        raise ToolError(
            f"extract_symbols does not support {language.name} files; it reads {supported}"
        )
    if language.parser == "python":
        return _python(text)
    # Imported here: tree-sitter loads only when a file needs it.
    from crewchief.tools import _treesitter

    return _treesitter.extract(text, language.parser)


def _python(text: str) -> tuple[list[Symbol], str | None]:
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError) as exc:
        where = f" at line {exc.lineno}" if getattr(exc, "lineno", None) else ""
        return _python_fallback(text), f"syntax error{where}; symbols found by pattern matching"
    out: list[Symbol] = []
    _python_body(tree.body, 0, out, in_class=False)
    return out, None


def _python_body(body: list[ast.stmt], depth: int, out: list[Symbol], *, in_class: bool) -> None:
    """Definitions of one block; ``if``/``try``/``with`` blocks are looked through."""
    implemented = {
        node.name
        for node in body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and not _is_overload(node)
    }
    overloads: dict[str, int] = {}
    for node in body:
        if isinstance(node, ast.ClassDef):
            signature = _class_signature(node)
            out.append(Symbol(node.lineno, depth, "class", node.name, signature, _end(node)))
            _python_body(node.body, depth + 1, out, in_class=True)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            # Overloads repeat the implementation's name: count them, show the implementation.
            if _is_overload(node) and node.name in implemented:
                overloads[node.name] = overloads.get(node.name, 0) + 1
                continue
            kind = "method" if in_class else "function"
            signature = _function_signature(node, overloads.pop(node.name, 0))
            out.append(Symbol(node.lineno, depth, kind, node.name, signature, _end(node)))
        else:
            for block in _inner_blocks(node):
                _python_body(block, depth, out, in_class=in_class)


def _end(node: ast.stmt) -> int:
    return node.end_lineno or node.lineno


def _inner_blocks(node: ast.stmt) -> list[list[ast.stmt]]:
    if isinstance(node, ast.If | ast.With | ast.AsyncWith):
        return [node.body, getattr(node, "orelse", [])]
    if isinstance(node, ast.Try | ast.TryStar):
        return [node.body, *(h.body for h in node.handlers), node.orelse, node.finalbody]
    return []


def _is_overload(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    return any(_decorator_name(d) == "overload" for d in node.decorator_list)


def _decorator_name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _class_signature(node: ast.ClassDef) -> str:
    bases = [ast.unparse(b) for b in node.bases]
    bases += [ast.unparse(k) for k in node.keywords]
    return clip(f"class {node.name}({', '.join(bases)})" if bases else f"class {node.name}")


def _function_signature(node: ast.FunctionDef | ast.AsyncFunctionDef, overloads: int) -> str:
    # Long defaults (big literals, calls) cost tokens and say little. The tree is ours.
    node.args.defaults = [_short_default(d) for d in node.args.defaults]
    node.args.kw_defaults = [_short_default(d) for d in node.args.kw_defaults]
    keyword = "async def" if isinstance(node, ast.AsyncFunctionDef) else "def"
    decorators = [
        f"@{name} "
        for d in node.decorator_list
        if (name := _decorator_name(d)) in {"property", "staticmethod", "classmethod"}
    ]
    returns = f" -> {ast.unparse(node.returns)}" if node.returns else ""
    signature = f"{''.join(decorators)}{keyword} {node.name}({ast.unparse(node.args)}){returns}"
    if overloads:
        signature += f"  [+{overloads} overloads]"
    return clip(signature)


def _short_default(node: ast.expr | None) -> ast.expr | None:
    if node is not None and len(ast.unparse(node)) > _MAX_DEFAULT:
        return ast.Constant(value=...)
    return node


def _python_fallback(text: str) -> list[Symbol]:
    """Definitions found line by line, for a file ``ast`` cannot parse."""
    out: list[Symbol] = []
    in_class = False
    starts = [m.start() for m in re.finditer("^", text, re.MULTILINE)]
    line_of = {start: number for number, start in enumerate(starts, 1)}
    for match in _PY_FALLBACK.finditer(text):
        indent, keyword, name, rest = match.groups()
        if not indent:
            in_class = keyword == "class"
        elif not in_class:
            continue  # a function nested in a function
        kind = "class" if keyword == "class" else ("method" if indent else "function")
        header = _PY_HEADER_END.match(rest)  # drop a body on the same line: "): pass"
        signature = clip(f"{keyword} {name}{header.group(1) if header else rest.rstrip(':')}")
        out.append(Symbol(line_of[match.start()], 1 if indent else 0, kind, name, signature))
    return out


def clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SIGNATURE else text[: MAX_SIGNATURE - 1] + "…"
