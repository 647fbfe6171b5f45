"""extract_symbols: definitions with line, signature and nesting, from ast and tree-sitter."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from crewchief.tools.files import run_file_tool
from crewchief.tools.workspace import Workspace
from tests.tools.conftest import write_tree

PYTHON = """from typing import TYPE_CHECKING, overload

if TYPE_CHECKING:
    def checked(x: int) -> int: ...


class Outer(Base, metaclass=Meta):
    class Inner:
        def deep(self): ...

    @property
    def size(self) -> int:
        def local():  # not a definition worth listing
            pass
        return 1

    @overload
    def get(self, key: int) -> int: ...
    @overload
    def get(self, key: str) -> str: ...
    def get(self, key, default={"a": 1, "b": 2, "c": 3, "d": 4}):
        return key

    @staticmethod
    async def make(*args, **kwargs) -> "Outer":
        return Outer()


try:
    from fast import speedup
except ImportError:
    def speedup(x, /, y=1, *, z): return x
"""


def test_python_definitions_nested_under_classes(ws: Workspace, root: Path) -> None:
    (root / "m.py").write_text(PYTHON)
    assert ws.extract_symbols("m.py").splitlines() == [
        "m.py:",
        "4 def checked(x: int) -> int",
        "7 class Outer(Base, metaclass=Meta)",
        "  8 class Inner",
        "    9 def deep(self)",
        "  12 @property def size(self) -> int",
        # Overloads are counted on the implementation; long defaults become "...".
        "  21 def get(self, key, default=...) [+2 overloads]",
        "  25 @staticmethod async def make(*args, **kwargs) -> 'Outer'",
        "32 def speedup(x, /, y=1, *, z)",
    ]


TYPESCRIPT = """\
import { x } from "./x";
export interface Shape {
  area(): number;
  name: string;
}
export type Id = string | number;
export enum Color { Red, Green }
export abstract class Base<T> implements Shape {
  abstract area(): number;
  constructor(private readonly n: string) { super(); }
  get name(): string { return this.n; }
  static make = (n: string): Base<string> => { return null as any; };
}
export function helper(a: number, b = 2): number { return a + b; }
export const arrow = async (s: string): Promise<void> => {};
namespace NS { export function inner(): void {} }
declare module "m" { export function ext(): void; }
"""

TSX = """\
import React from "react";
export function App({ title }: { title: string }) { return <div>{title}</div>; }
export const Button = (p: Props) => <button onClick={p.onClick}>{p.label}</button>;
class Widget extends React.Component<Props> { render() { return <span/>; } }
"""

RUST = """\
use std::collections::HashMap;
/// doc
pub struct Point { x: i32, y: i32 }
pub enum Shape { Circle(f64), Square(f64) }
pub trait Area { fn area(&self) -> f64; fn describe(&self) -> String { String::new() } }
impl Area for Point { fn area(&self) -> f64 { 0.0 } }
impl<T: Clone> Wrapper<T> { pub fn new(v: T) -> Self { Wrapper(v) } }
pub mod inner { pub fn deep() {} }
macro_rules! square { ($x:expr) => { $x * $x }; }
pub type Map = HashMap<String, i32>;
pub async fn fetch(url: &str) -> Result<String, Error> where Error: Debug { todo!() }
"""

GO = """\
package main

import (
	"fmt"
	str "strings"
)

type Point struct {
	X, Y int
}

type Shape interface {
	Area() float64
}

type ID = string

func (p *Point) Area() float64 { return 0 }

func main() {
	fmt.Println(str.ToUpper("x"))
}
"""

JAVASCRIPT = """\
const fs = require('fs')
class A extends B {
  constructor (x) { super(x) }
  static create () {}
  async *gen () {}
  #priv () {}
  handler = (e) => { }
}
function top (a, b = 1) {}
function* g () {}
const f = function named () {}
let h = async x => x
module.exports = class Exported { m () {} }
exports.helper = function (y) {}
export default function def () {}
"""

EXPECTED = {
    "a.ts": (
        TYPESCRIPT,
        [
            "2 interface Shape",
            "  3 area(): number",
            "6 type Id = string | number",
            "7 enum Color",
            "8 abstract class Base<T> implements Shape",
            "  9 abstract area(): number",
            "  10 constructor(private readonly n: string)",
            "  11 get name(): string",
            "  12 static make = (n: string): Base<string> =>",
            "14 function helper(a: number, b = 2): number",
            "15 const arrow = async (s: string): Promise<void> =>",
            "16 namespace NS",
            "  16 function inner(): void",
            '17 module "m"',
            "  17 function ext(): void",
        ],
    ),
    "b.tsx": (
        TSX,
        [
            "2 function App({ title }: { title: string })",
            "3 const Button = (p: Props) =>",
            "4 class Widget extends React.Component<Props>",
            "  4 render()",
        ],
    ),
    "c.rs": (
        RUST,
        [
            "3 pub struct Point",
            "4 pub enum Shape",
            "5 pub trait Area",
            "  5 fn area(&self) -> f64",
            "  5 fn describe(&self) -> String",
            "6 impl Area for Point",
            "  6 fn area(&self) -> f64",
            "7 impl<T: Clone> Wrapper<T>",
            "  7 pub fn new(v: T) -> Self",
            "8 pub mod inner",
            "  8 pub fn deep()",
            "9 macro_rules! square",
            "10 pub type Map = HashMap<String, i32>",
            "11 pub async fn fetch(url: &str) -> Result<String, Error> where Error: Debug",
        ],
    ),
    "d.go": (
        GO,
        [
            "8 type Point struct",
            "12 type Shape interface",
            "16 type ID = string",
            "18 func (p *Point) Area() float64",
            "20 func main()",
        ],
    ),
    "e.js": (
        JAVASCRIPT,
        [
            "2 class A extends B",
            "  3 constructor (x)",
            "  4 static create ()",
            "  5 async *gen ()",
            "  6 #priv ()",
            "  7 handler = (e) =>",
            "9 function top (a, b = 1)",
            "10 function* g ()",
            "11 const f = function named ()",
            "12 let h = async x =>",
            "13 module.exports = class Exported",
            "  13 m ()",
            "14 exports.helper = function (y)",
            "15 function def ()",
        ],
    ),
}


@pytest.mark.parametrize("name", list(EXPECTED))
def test_tree_sitter_languages(ws: Workspace, root: Path, name: str) -> None:
    source, expected = EXPECTED[name]
    (root / name).write_text(source)
    outcome = run_file_tool(ws, "extract_symbols", {"path": name})
    assert outcome.ok, outcome.output
    assert outcome.output.splitlines() == [f"{name}:", *expected]


def test_python_that_does_not_parse_still_gives_its_definitions(ws: Workspace, root: Path) -> None:
    (root / "broken.py").write_text(
        "class Good:\n    def ok(self):\n        pass\n\ndef broken(:\n    pass\n\n"
        "def inner_is_skipped():\n    def inner(): pass\n"
    )
    assert ws.extract_symbols("broken.py").splitlines() == [
        "broken.py:",
        "1 class Good",
        "  2 def ok(self)",
        "5 def broken(",
        "8 def inner_is_skipped()",
        "(syntax error at line 5; symbols found by pattern matching)",
    ]


def test_tree_with_parse_errors_gives_a_note(ws: Workspace, root: Path) -> None:
    (root / "broken.js").write_text("function ok () {}\nfunction bad ( {\n")
    assert ws.extract_symbols("broken.js").splitlines() == [
        "broken.js:",
        "1 function ok ()",
        "(parse errors near line 2; definitions there may be missing)",
    ]


def test_unsupported_language_lists_the_supported_ones(ws: Workspace) -> None:
    outcome = run_file_tool(ws, "extract_symbols", {"path": "notes.txt"})
    assert (outcome.ok, outcome.output) == (
        False,
        "extract_symbols does not support Text files; "
        "it reads Python, JavaScript, TypeScript, TSX, Rust, Go",
    )


def test_folder_and_glob_give_every_supported_file(ws: Workspace, root: Path) -> None:
    write_tree(
        root,
        {
            "pkg/a.py": "def a():\n    pass\n",
            "pkg/b.go": "package b\n\nfunc B() {}\n",
            "pkg/empty.py": "X = 1\n",
            "pkg/readme.md": "# not code\n",
        },
    )
    every = "pkg/a.py:\n1 def a()\npkg/b.go:\n3 func B()\npkg/empty.py: no definitions found"
    assert ws.extract_symbols("pkg") == every
    assert ws.extract_symbols("pkg/") == every
    assert (
        ws.extract_symbols("**/*.py") == "pkg/a.py:\n1 def a()\npkg/empty.py: no definitions found"
    )
    outcome = run_file_tool(ws, "extract_symbols", {"path": "*.md"})
    assert outcome.ok is False
    assert "no files of a supported language (Python, JavaScript" in outcome.output


def test_symbols_and_files_are_bounded(root: Path) -> None:
    write_tree(root, {f"m{n:02}.py": f"def f{n}():\n    pass\n" for n in range(52)})
    (root / "wide.py").write_text("".join(f"def w{n}(): pass\n" for n in range(5)))
    ws = Workspace(root, max_symbols=3)
    assert ws.extract_symbols("wide.py") == (
        "wide.py:\n1 def w0()\n2 def w1()\n3 def w2()\n"
        "(stopped at 3 symbols; ask for one file, or fewer files)"
    )
    assert ws.extract_symbols("m0*.py").splitlines()[-2:] == [
        "1 def f2()",
        "(stopped at 3 symbols; ask for one file, or fewer files)",
    ]
    many = Workspace(root).extract_symbols("m*.py").splitlines()
    assert many[-3:] == ["m49.py:", "1 def f49()", "(read the first 50 of 52 files)"]


def test_parsers_load_lazily_and_python_needs_no_tree_sitter(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("class A:\n    def b(self): ...\n")
    script = f"""
import sys
sys.modules["tree_sitter"] = None  # any import of it now fails
from crewchief.tools.workspace import Workspace
from crewchief.tools.files import run_file_tool
ws = Workspace({str(tmp_path)!r})
print(run_file_tool(ws, "extract_symbols", {{"path": "m.py"}}).output)
assert not [m for m in sys.modules if m.startswith("tree_sitter_")], "grammar imported"
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "m.py:\n1 class A\n  2 def b(self)\n"
