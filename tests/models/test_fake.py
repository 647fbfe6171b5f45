"""The scripted ``fake`` provider, used as users would in their own tests."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from crewchief import FakeChatModel, FakeScript
from crewchief.errors import ScriptError


def test_rules_match_by_node_and_prompt_and_replies_are_consumed_in_order() -> None:
    script = FakeScript(
        rules=[
            {"node": "execute_task", "match": "tests", "replies": ["first", "second"]},
            {"match": "docs", "reply": "docs reply", "times": 1},
        ],
        fallback="error",
    )
    model = FakeChatModel(script=script)
    config = {"metadata": {"langgraph_node": "execute_task"}}
    assert model.invoke([HumanMessage("write tests")], config=config).content == "first"
    assert model.invoke([HumanMessage("write tests")], config=config).content == "second"
    assert model.invoke([HumanMessage("write tests")], config=config).content == "second"
    assert model.invoke([HumanMessage("write docs")]).content == "docs reply"
    with pytest.raises(ScriptError, match="no reply for node None"):
        model.invoke([HumanMessage("write docs")])


def test_tool_calls_usage_and_errors() -> None:
    script = FakeScript(
        rules=[
            {
                "match": "read",
                "reply": {
                    "tool_calls": [{"name": "read_file", "args": {"path": "a.py"}}],
                    "usage": {"input": 100, "output": 7, "reasoning": 3},
                },
            },
            {"match": "boom", "reply": {"error": "rate limited"}},
        ]
    )
    model = FakeChatModel(script=script)
    msg = model.invoke([HumanMessage("read it")])
    assert msg.tool_calls[0]["name"] == "read_file" and msg.tool_calls[0]["args"] == {
        "path": "a.py"
    }
    assert msg.usage_metadata["input_tokens"] == 100
    assert msg.usage_metadata["output_tokens"] == 10
    assert msg.usage_metadata["output_token_details"] == {"reasoning": 3}
    with pytest.raises(RuntimeError, match="rate limited"):
        model.invoke([HumanMessage("boom")])


def test_streams_scripted_chunks_with_usage_on_the_last() -> None:
    model = FakeChatModel(
        script=FakeScript(rules=[{"reply": {"text": "abc", "chunks": ["a", "b", "c"]}}])
    )

    async def collect():
        return [c async for c in model.astream([HumanMessage("x")])]

    chunks = asyncio.run(collect())
    assert [c.content for c in chunks] == ["a", "b", "c"]
    assert chunks[-1].usage_metadata["output_tokens"] >= 1


def test_structured_plan_reply_is_json_text() -> None:
    plan = {"tasks": [{"id": 1, "description": "Run it", "active_form": "Running it"}]}
    model = FakeChatModel(script=FakeScript(rules=[{"reply": {"plan": plan}}]))
    assert json.loads(model.invoke([HumanMessage("plan")]).content) == plan


# A hang guard, not a speed target: cancelling the 30 s delay normally ends it at once.
CANCEL_HANG_GUARD_S = 5


def test_delay_is_cancellable() -> None:
    model = FakeChatModel(script=FakeScript(rules=[{"reply": {"text": "late", "delay": 30}}]))

    async def main():
        task = asyncio.create_task(model.ainvoke([HumanMessage("x")]))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(main(), CANCEL_HANG_GUARD_S))


def test_script_files_load_and_report_problems(tmp_path: Path) -> None:
    good = tmp_path / "s.yaml"
    good.write_text("rules:\n  - node: plan\n    reply: hello\n")
    assert FakeScript.load(good).rules[0].reply.text == "hello"
    bad = tmp_path / "bad.json"
    bad.write_text('{"rules": [{"match": "(", "reply": "x"}]}')
    with pytest.raises(
        ScriptError, match="rules.0.match: Value error, match is not a valid regular expression"
    ):
        FakeScript.load(bad)
    with pytest.raises(ScriptError, match="cannot read fake script"):
        FakeScript.load(tmp_path / "missing.json")
    empty = tmp_path / "empty.json"
    empty.write_text('{"rules": [{"node": "plan"}]}')
    with pytest.raises(ScriptError, match="rule 1 has neither 'reply' nor 'replies'"):
        FakeScript.load(empty)


async def test_rules_can_match_the_alias_answering() -> None:
    from crewchief.models.registry import current_call
    from crewchief.models.types import CallInfo

    script = FakeScript(
        rules=[
            {"node": "plan", "alias": "delegate", "reply": "delegate answer"},
            {"node": "plan", "reply": "orchestrator answer"},
        ],
        fallback="error",
    )
    model = FakeChatModel(script=script)
    answers = []
    for alias in ("delegate", "orchestrator"):
        token = current_call.set(CallInfo("plan", alias=alias))
        try:
            answers.append((await model.ainvoke([HumanMessage("q")])).content)
        finally:
            current_call.reset(token)
    assert answers == ["delegate answer", "orchestrator answer"]
    assert [c["alias"] for c in model.calls] == ["delegate", "orchestrator"]
