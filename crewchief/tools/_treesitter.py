"""Definitions from tree-sitter syntax trees: JavaScript, TypeScript/TSX, Rust and Go.

Grammars are imported and built on first use, never at import time. Each
grammar names the node types that are definitions, those whose body holds
nested definitions (classes, impls, traits, interfaces, modules), and those
looked through at the same depth (exports, declarations, parse errors).
"""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass
from functools import cache
from typing import Any

from crewchief.tools._fs import ToolError
from crewchief.tools.symbols import Symbol, clip

_FUNCTION_VALUES = frozenset(
    {"arrow_function", "function_expression", "function", "generator_function"}
)
_CLASS_VALUES = frozenset({"class", "class_expression"})
# Nodes that bind a name to a value: (node type, name field, value field).
_BINDINGS = {
    "variable_declarator": ("name", "value"),
    "assignment_expression": ("left", "right"),
    "field_definition": ("property", "value"),
    "public_field_definition": ("name", "value"),
}


@dataclass(frozen=True, slots=True)
class _Grammar:
    module: str
    function: str
    defs: dict[str, str]  # node type -> kind
    containers: frozenset[str]
    wrappers: frozenset[str]
    prefixes: dict[str, str]  # node type -> text put before the signature


_JS_DEFS = {
    "class_declaration": "class",
    "class": "class",
    "function_declaration": "function",
    "generator_function_declaration": "function",
    "method_definition": "method",
}
_TS_DEFS = {
    **_JS_DEFS,
    "abstract_class_declaration": "class",
    "interface_declaration": "interface",
    "type_alias_declaration": "type",
    "enum_declaration": "enum",
    "method_signature": "method",
    "abstract_method_signature": "method",
    "function_signature": "function",
    "internal_module": "namespace",
    "module": "module",
}
_JS_CONTAINERS = frozenset({"class_declaration", "class", "abstract_class_declaration"})
_TS_CONTAINERS = _JS_CONTAINERS | {"interface_declaration", "internal_module", "module"}
_JS_WRAPPERS = frozenset(
    {
        "program",
        "ERROR",
        "export_statement",
        "lexical_declaration",
        "variable_declaration",
        "expression_statement",
        "ambient_declaration",
        *_BINDINGS,
    }
)
_RUST_DEFS = {
    "function_item": "fn",
    "function_signature_item": "fn",
    "struct_item": "struct",
    "enum_item": "enum",
    "union_item": "union",
    "trait_item": "trait",
    "impl_item": "impl",
    "mod_item": "mod",
    "type_item": "type",
    "macro_definition": "macro",
}
_GRAMMARS = {
    "javascript": _Grammar(
        "tree_sitter_javascript", "language", _JS_DEFS, _JS_CONTAINERS, _JS_WRAPPERS, {}
    ),
    "typescript": _Grammar(
        "tree_sitter_typescript", "language_typescript", _TS_DEFS, _TS_CONTAINERS, _JS_WRAPPERS, {}
    ),
    "tsx": _Grammar(
        "tree_sitter_typescript", "language_tsx", _TS_DEFS, _TS_CONTAINERS, _JS_WRAPPERS, {}
    ),
    "rust": _Grammar(
        "tree_sitter_rust",
        "language",
        _RUST_DEFS,
        frozenset({"trait_item", "impl_item", "mod_item"}),
        frozenset({"source_file", "ERROR", "foreign_mod_item", "declaration_list"}),
        {},
    ),
    "go": _Grammar(
        "tree_sitter_go",
        "language",
        {
            "function_declaration": "func",
            "method_declaration": "method",
            "type_spec": "type",
            "type_alias": "type",
        },
        frozenset(),
        frozenset({"source_file", "ERROR", "type_declaration"}),
        {"type_spec": "type ", "type_alias": "type "},
    ),
}
_lock = threading.Lock()


@cache
def _language(name: str) -> Any:
    grammar = _GRAMMARS[name]
    try:
        import tree_sitter

        module = importlib.import_module(grammar.module)
    except ImportError:
        package = grammar.module.replace("_", "-")
        raise ToolError(f"reading {name} files needs the {package} package") from None
    return tree_sitter.Language(getattr(module, grammar.function)())


def extract(text: str, grammar_name: str) -> tuple[list[Symbol], str | None]:
    """The symbols of ``text`` and a note when the tree holds parse errors."""
    import tree_sitter

    with _lock:  # building a Language is not safe to race; parsing is per-parser
        language = _language(grammar_name)
    source = text.encode("utf-8")
    tree = tree_sitter.Parser(language).parse(source)
    out: list[Symbol] = []
    _Walk(_GRAMMARS[grammar_name], source, out).body(tree.root_node, 0, in_class=False)
    note = None
    if tree.root_node.has_error:
        line = _first_error_line(tree.root_node)
        note = f"parse errors near line {line}; definitions there may be missing"
    return out, note


@dataclass(slots=True)
class _Walk:
    grammar: _Grammar
    source: bytes
    out: list[Symbol]

    def body(self, node: Any, depth: int, *, in_class: bool) -> None:
        for child in node.named_children:
            kind = self.grammar.defs.get(child.type)
            if kind is not None:
                self.definition(child, kind, depth, in_class=in_class)
            elif child.type in _BINDINGS:
                self.binding(child, depth, in_class=in_class)
            elif child.type in self.grammar.wrappers:
                self.body(child, depth, in_class=in_class)

    def definition(self, node: Any, kind: str, depth: int, *, in_class: bool) -> None:
        if kind == "function" and in_class:
            kind = "method"
        prefix = self.grammar.prefixes.get(node.type, "")
        signature = clip(prefix + self.header(node, node.start_byte))
        start, end = node.start_point.row + 1, node.end_point.row + 1
        self.out.append(Symbol(start, depth, kind, _name(node), signature, end))
        body = node.child_by_field_name("body")
        if node.type in self.grammar.containers and body is not None:
            self.body(body, depth + 1, in_class=True)

    def binding(self, node: Any, depth: int, *, in_class: bool) -> None:
        """``const f = () => …``, ``exports.f = function …``, ``x = class …``, fields."""
        name_field, value_field = _BINDINGS[node.type]
        value = node.child_by_field_name(value_field)
        name = node.child_by_field_name(name_field)
        if value is None or name is None:
            return
        if value.type in _FUNCTION_VALUES:
            kind = "method" if in_class else "function"
        elif value.type in _CLASS_VALUES:
            kind = "class"
        else:
            return
        # The declaration keyword ("const", "export const") belongs to the signature.
        start = node.parent.start_byte if node.type == "variable_declarator" else node.start_byte
        signature = clip(self.header(value, start))
        start, end = node.start_point.row + 1, node.end_point.row + 1
        self.out.append(Symbol(start, depth, kind, _text(name), signature, end))
        body = value.child_by_field_name("body")
        if kind == "class" and body is not None:
            self.body(body, depth + 1, in_class=True)

    def header(self, node: Any, start: int) -> str:
        """The declaration from ``start`` up to the body, or its first part if it has none."""
        body = node.child_by_field_name("body")
        end = body.start_byte if body is not None else node.end_byte
        text = self.source[start:end].decode("utf-8", errors="replace")
        if body is None:
            text = text.split("{", 1)[0]
        return " ".join(text.split()).rstrip("{=;: ")


def _name(node: Any) -> str:
    for field in ("name", "type"):
        child = node.child_by_field_name(field)
        if child is not None:
            return _text(child)
    return ""


def _text(node: Any) -> str:
    return node.text.decode("utf-8", errors="replace") if node.text else ""


def _first_error_line(node: Any) -> int:
    """The line of the first ERROR or missing node, looking only where errors are."""
    while True:
        if node.type == "ERROR" or node.is_missing:
            return node.start_point.row + 1
        flawed = [c for c in node.children if c.has_error or c.is_missing]
        if not flawed:
            return node.start_point.row + 1
        node = flawed[0]
