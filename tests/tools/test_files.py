"""Tool specs offered to models, tool_specs, and run_file_tool's argument checking."""

from __future__ import annotations

from pathlib import Path

import pytest

from crewchief.tools.files import (
    FILE_TOOLS,
    READ_ONLY_TOOLS,
    TOOL_NAMES,
    run_file_tool,
    tool_specs,
)
from crewchief.tools.workspace import Workspace


def test_every_tool_has_a_valid_spec_in_canonical_order() -> None:
    assert [t["function"]["name"] for t in FILE_TOOLS] == list(TOOL_NAMES)
    assert TOOL_NAMES == (
        "read_file",
        "write_file",
        "list_files",
        "grep_files",
        "summarize_file",
        "extract_symbols",
        "count_lines",
        "search_code",
    )
    for tool in FILE_TOOLS:
        assert tool["type"] == "function"
        function = tool["function"]
        assert len(function["description"]) > 40
        params = function["parameters"]
        assert params["type"] == "object"
        assert set(params["required"]) <= set(params["properties"])
        for prop in params["properties"].values():
            assert prop["type"] in {"string", "integer", "boolean", "array"}
            assert prop["description"], "every argument is described for the model"
            if prop["type"] == "array":
                assert prop["items"] == {"type": "string"}


def test_read_only_tools_are_all_but_write_file() -> None:
    assert READ_ONLY_TOOLS == set(TOOL_NAMES) - {"write_file"}


def test_tool_specs_keep_canonical_order_and_refuse_unknown_names() -> None:
    names = [s["function"]["name"] for s in tool_specs(["count_lines", "read_file", "grep_files"])]
    assert names == ["read_file", "grep_files", "count_lines"]
    assert tool_specs([]) == []
    assert tool_specs(iter(TOOL_NAMES)) == FILE_TOOLS
    with pytest.raises(ValueError, match=r"unknown file tool\(s\) delete_all, rm; the tools are"):
        tool_specs(["read_file", "rm", "delete_all"])


@pytest.mark.parametrize("name", TOOL_NAMES)
@pytest.mark.parametrize(
    "value", [None, 12, -5, 10**30, 1.5, True, [], ["x", 1], {"a": 1}, "", "\x00", "../.."]
)
def test_odd_values_for_every_argument_never_raise(
    tmp_path: Path, name: str, value: object
) -> None:
    ws = Workspace.open(tmp_path)
    (tmp_path / "a.py").write_text("def f():\n    pass\n")
    params = next(t for t in FILE_TOOLS if t["function"]["name"] == name)["function"]["parameters"]
    base = {"path": "a.py", "content": "x", "pattern": "f", "paths": ["a.py"], "query": "f"}
    for key in params["properties"]:
        args = {k: base[k] for k in params["required"]}
        args[key] = value
        outcome = run_file_tool(ws, name, args)
        assert isinstance(outcome.output, str)
        assert outcome.output, "a refusal always says why"


@pytest.mark.parametrize(
    ("name", "args", "expected"),
    [
        ("grep_files", {"pattern": "x", "context": 1.5}, "grep_files: context must be an integer"),
        (
            "grep_files",
            {"pattern": "x", "ignore_case": 1},
            "grep_files: ignore_case must be true or false",
        ),
        ("count_lines", {"paths": {"a": 1}}, "count_lines: paths must be a list of strings"),
        ("count_lines", {"paths": "[not json"}, "count_lines: paths must be a list of strings"),
        ("extract_symbols", {"path": ["a.py"]}, "extract_symbols: path must be a string"),
        ("summarize_file", {}, "summarize_file needs argument(s) path"),
        ("count_lines", {"path": "a.py"}, "count_lines needs argument(s) paths"),
        ("read_file", [], "read_file: arguments must be an object of named arguments"),
    ],
)
def test_wrong_types_name_the_argument(
    tmp_path: Path, name: str, args: object, expected: str
) -> None:
    outcome = run_file_tool(Workspace.open(tmp_path), name, args)  # type: ignore[arg-type]
    assert (outcome.ok, outcome.output) == (False, expected)
