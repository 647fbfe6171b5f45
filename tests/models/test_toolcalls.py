"""Tool-call repair: text-written calls, unoffered tools, repeats and broken arguments."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.messages.tool import invalid_tool_call

from crewchief.models.toolcalls import Repair, repair_tool_calls, tool_names
from crewchief.tools.files import tool_specs

# The tools these tests offer: a small set, so refusal messages stay readable.
FILE_TOOLS = tool_specs(["read_file", "write_file", "list_files"])

PARSED_ONE = "parsed 1 tool call(s) written as text"
OFFERED = "list_files, read_file, write_file"


def calls(repair: Repair) -> list[tuple[str, dict]]:
    return [(c["name"], c["args"]) for c in repair.message.tool_calls]


def repair_text(text: str, **kwargs) -> Repair:
    return repair_tool_calls(AIMessage(content=text, **kwargs), FILE_TOOLS)


def test_tool_names() -> None:
    assert tool_names(FILE_TOOLS) == {"read_file", "write_file", "list_files"}
    assert tool_names([{"name": "search", "parameters": {}}]) == {"search"}


def test_native_call_passes_through_untouched() -> None:
    message = AIMessage(
        content="Reading it.",
        tool_calls=[{"name": "read_file", "args": {"path": "utils.py"}, "id": "call_1"}],
    )
    repair = repair_tool_calls(message, FILE_TOOLS)
    assert repair.message is message
    assert (repair.notes, repair.repaired_calls) == ([], 0)


def test_plain_json_text_becomes_a_call() -> None:
    repair = repair_text('{"name": "read_file", "arguments": {"path": "utils.py"}}')
    assert calls(repair) == [("read_file", {"path": "utils.py"})]
    call = repair.message.tool_calls[0]
    assert call["id"].startswith("call_")
    assert call["type"] == "tool_call"
    assert repair.message.content == ""
    assert repair.notes == [PARSED_ONE]
    assert repair.repaired_calls == 1
    assert repair.message.response_metadata["crewchief_repairs"] == [PARSED_ONE]


def test_fenced_json_with_prose_around_it() -> None:
    text = (
        "I will read the file first.\n"
        '```json\n{"name": "read_file", "arguments": {"path": "src/app.py"}}\n```\n'
        "Then I will fix the bug."
    )
    repair = repair_text(text)
    assert calls(repair) == [("read_file", {"path": "src/app.py"})]
    assert repair.message.content == "I will read the file first.\n\nThen I will fix the bug."
    assert repair.notes == [PARSED_ONE]


@pytest.mark.parametrize(
    ("text", "content"),
    [
        (
            '<tool_call>\n{"name": "list_files", "arguments": {"pattern": "**/*.py"}}\n</tool_call>',
            "",
        ),
        (
            'Let me look.\n<tool_call>\n{"name": "list_files", "arguments": {"pattern": "**/*.py"}}',
            "Let me look.",
        ),
    ],
    ids=["closed", "unterminated"],
)
def test_tool_call_tags(text: str, content: str) -> None:
    repair = repair_text(text)
    assert calls(repair) == [("list_files", {"pattern": "**/*.py"})]
    assert repair.message.content == content
    assert repair.notes == [PARSED_ONE]


@pytest.mark.parametrize(
    "text",
    [
        '{"type": "function", "function": {"name": "read_file", '
        '"arguments": "{\\"path\\": \\"a.py\\", \\"start_line\\": 3}"}}',
        '{"tool": "read_file", "args": {"path": "a.py", "start_line": 3}}',
        '{"tool_call": {"name": "read_file", "parameters": {"path": "a.py", "start_line": 3}}}',
    ],
    ids=["function-wrapper-string-args", "tool-args", "tool_call-parameters"],
)
def test_other_call_shapes(text: str) -> None:
    repair = repair_text(text)
    assert calls(repair) == [("read_file", {"path": "a.py", "start_line": 3})]
    assert repair.message.content == ""


def test_list_of_two_calls() -> None:
    text = (
        '[{"name": "read_file", "arguments": {"path": "a.py"}}, '
        '{"name": "read_file", "arguments": {"path": "b.py"}}]'
    )
    repair = repair_text(text)
    assert calls(repair) == [("read_file", {"path": "a.py"}), ("read_file", {"path": "b.py"})]
    assert repair.notes == ["parsed 2 tool call(s) written as text"]
    assert repair.repaired_calls == 2
    ids = [c["id"] for c in repair.message.tool_calls]
    assert len(set(ids)) == 2


def test_write_with_literal_newlines_in_json_string() -> None:
    # Real newlines and a tab inside the JSON string: invalid strict JSON.
    text = (
        '{"name": "write_file", "arguments": {"path": "hello.py", '
        '"content": "def hello():\n\treturn \\"hi\\"\n"}}'
    )
    repair = repair_text(text)
    assert calls(repair) == [
        ("write_file", {"path": "hello.py", "content": 'def hello():\n\treturn "hi"\n'})
    ]


def test_text_call_to_unoffered_tool_is_refused() -> None:
    repair = repair_text('{"name": "delete_everything", "arguments": {"confirm": true}}')
    assert repair.message.tool_calls == []
    assert repair.notes == [
        f"refused a call to 'delete_everything': not an offered tool ({OFFERED})"
    ]
    assert repair.repaired_calls == 0


def test_native_call_to_unoffered_tool_is_refused() -> None:
    message = AIMessage(
        content="",
        tool_calls=[
            {"name": "delete_everything", "args": {}, "id": "c1"},
            {"name": "read_file", "args": {"path": "a.py"}, "id": "c2"},
        ],
    )
    repair = repair_tool_calls(message, FILE_TOOLS)
    assert calls(repair) == [("read_file", {"path": "a.py"})]
    assert repair.message.tool_calls[0]["id"] == "c2"
    assert repair.notes == [
        f"refused a call to 'delete_everything': not an offered tool ({OFFERED})"
    ]
    assert repair.refused == [("delete_everything", {})]
    no_tools = repair_tool_calls(message, [])
    assert no_tools.message.tool_calls == []
    assert no_tools.notes == [
        "refused a call to 'delete_everything': no tools were offered",
        "refused a call to 'read_file': no tools were offered",
    ]


def test_text_json_left_alone_when_no_tools_offered() -> None:
    message = AIMessage(content='{"name": "read_file", "arguments": {"path": "a.py"}}')
    repair = repair_tool_calls(message, [])
    assert repair.message is message
    assert repair.notes == []


def _history(args: dict) -> list:
    return [
        HumanMessage(content="Fix the bug in a.py"),
        AIMessage(content="", tool_calls=[{"name": "read_file", "args": args, "id": "c1"}]),
        ToolMessage(content="print('hi')", tool_call_id="c1"),
    ]


def test_repeated_call_after_its_result_is_dropped() -> None:
    again = AIMessage(
        content="", tool_calls=[{"name": "read_file", "args": {"path": "a.py"}, "id": "c2"}]
    )
    repair = repair_tool_calls(again, FILE_TOOLS, _history({"path": "a.py"}))
    assert repair.message.tool_calls == []
    assert repair.notes == ["dropped a repeated call to 'read_file' with the same arguments"]


def test_repeated_text_call_is_dropped_too() -> None:
    again = AIMessage(content='{"name": "read_file", "arguments": {"path": "a.py"}}')
    repair = repair_tool_calls(again, FILE_TOOLS, _history({"path": "a.py"}))
    assert repair.message.tool_calls == []
    assert repair.notes == [
        PARSED_ONE,
        "dropped a repeated call to 'read_file' with the same arguments",
    ]


def test_unanswered_or_different_calls_are_kept() -> None:
    other = AIMessage(
        content="", tool_calls=[{"name": "read_file", "args": {"path": "b.py"}, "id": "c2"}]
    )
    assert repair_tool_calls(other, FILE_TOOLS, _history({"path": "a.py"})).message is other
    same = AIMessage(
        content="", tool_calls=[{"name": "read_file", "args": {"path": "a.py"}, "id": "c2"}]
    )
    unanswered = _history({"path": "a.py"})[:2]
    assert repair_tool_calls(same, FILE_TOOLS, unanswered).message is same


def test_identical_calls_in_one_reply_keep_one() -> None:
    message = AIMessage(
        content="",
        tool_calls=[
            {"name": "list_files", "args": {"pattern": "*.py"}, "id": "c1"},
            {"name": "list_files", "args": {"pattern": "*.py"}, "id": "c2"},
        ],
    )
    repair = repair_tool_calls(message, FILE_TOOLS)
    assert [c["id"] for c in repair.message.tool_calls] == ["c1"]
    assert repair.notes == ["dropped a repeated call to 'list_files' with the same arguments"]


def test_invalid_tool_call_with_repairable_args_is_recovered() -> None:
    bad = invalid_tool_call(
        name="write_file",
        args='{"path": "a.txt", "content": "line 1\nline 2\n"}',
        id="c7",
        error="Invalid control character",
    )
    repair = repair_tool_calls(AIMessage(content="", invalid_tool_calls=[bad]), FILE_TOOLS)
    assert calls(repair) == [("write_file", {"path": "a.txt", "content": "line 1\nline 2\n"})]
    assert repair.message.tool_calls[0]["id"] == "c7"
    assert repair.message.invalid_tool_calls == []
    assert repair.notes == ["repaired the arguments of a call to 'write_file'"]


def test_invalid_tool_call_with_broken_args_is_dropped() -> None:
    bad = invalid_tool_call(name="write_file", args='{"path": "a.txt", "con', id="c7", error="x")
    repair = repair_tool_calls(AIMessage(content="", invalid_tool_calls=[bad]), FILE_TOOLS)
    assert repair.message.tool_calls == []
    assert repair.notes == ["dropped a call to 'write_file' whose arguments are not JSON"]


@pytest.mark.parametrize(
    "text",
    [
        "All tests pass now.",
        'The health check returned {"status": "ok"} so the service is up.',
        'Use it like this:\n```python\nconfig = {"path": "a.py", "retries": 3}\n```',
        "The function returns [1, 2, 3] for that input.",
        'Broken JSON like {"name": "read_file", "arguments": {"path": stays as text.',
    ],
)
def test_prose_without_tool_calls_is_untouched(text: str) -> None:
    message = AIMessage(content=text)
    repair = repair_tool_calls(message, FILE_TOOLS)
    assert repair.message is message
    assert repair.message.content == text
    assert (repair.notes, repair.repaired_calls) == ([], 0)


def test_repair_preserves_usage_id_and_metadata() -> None:
    usage = {"input_tokens": 120, "output_tokens": 30, "total_tokens": 150}
    repair = repair_text(
        '{"name": "list_files", "arguments": {}}',
        usage_metadata=usage,
        id="run-42",
        response_metadata={"model_name": "qwen2.5-coder:7b"},
    )
    assert calls(repair) == [("list_files", {})]
    assert repair.message.usage_metadata == usage
    assert repair.message.id == "run-42"
    assert repair.message.response_metadata == {
        "model_name": "qwen2.5-coder:7b",
        "crewchief_repairs": [PARSED_ONE],
    }


def test_list_content_blocks_are_read_as_text() -> None:
    message = AIMessage(
        content=[{"type": "text", "text": '{"name": "read_file", "arguments": {"path": "x.py"}}'}]
    )
    repair = repair_tool_calls(message, FILE_TOOLS)
    assert calls(repair) == [("read_file", {"path": "x.py"})]
    assert repair.message.content == ""


@pytest.mark.parametrize(
    "text",
    [
        'Our package.json:\n{"name": "my-app", "version": "1.0.0"}\nLooks fine.',
        'Example:\n```python\nuser = {"name": "Bob", "age": 3}\n```\nDone.',
    ],
)
def test_json_with_a_name_key_is_not_a_call(text: str) -> None:
    repair = repair_text(text)
    assert calls(repair) == [] and repair.notes == [] and repair.message.content == text


def test_two_calls_in_one_fence_keep_the_prose_after_it() -> None:
    text = (
        "Let me look.\n```json\n"
        '{"name": "read_file", "arguments": {"path": "a.py"}}\n'
        '{"name": "read_file", "arguments": {"path": "b.py"}}\n'
        "```\nThen I will fix the bug."
    )
    repair = repair_text(text)
    assert calls(repair) == [("read_file", {"path": "a.py"}), ("read_file", {"path": "b.py"})]
    assert repair.message.content == "Let me look.\n\nThen I will fix the bug."


def test_an_echoed_tool_definition_is_not_a_call() -> None:
    text = (
        '{"type": "function", "function": {"name": "read_file", "description": "Read",'
        ' "parameters": {"type": "object", "properties": {"path": {"type": "string"}}}}}'
    )
    assert calls(repair_text(text)) == []
