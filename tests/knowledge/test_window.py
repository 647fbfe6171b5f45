"""Context-window fitting: property tests over random conversations with tool calls, in
both dialects, and what the summary step does when the fast model fails or rambles."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage, ToolMessage

from crewchief.knowledge.window import (
    LANGCHAIN,
    OPENAI,
    Trimmed,
    WindowError,
    count,
    fit,
)

WORDS = ["parser", "cache", "thread", "token", "file", "error", "test", "lock", "the", "a"]


@st.composite
def conversations(draw: st.DrawFn) -> list[dict[str, Any]]:
    """A valid conversation: system prompt(s), a first user turn, then user turns,
    assistant answers and assistant tool calls each followed by all their results."""

    def text(max_words: int) -> str:
        n = draw(st.integers(0, max_words))
        return " ".join(draw(st.sampled_from(WORDS)) for _ in range(n))

    out: list[dict[str, Any]] = [
        {"role": "system", "content": text(40)} for _ in range(draw(st.integers(0, 2)))
    ]
    out.append({"role": "user", "content": text(300) or "hi"})
    call = 0
    for _ in range(draw(st.integers(0, 14))):
        kind = draw(st.sampled_from(["user", "assistant", "tools"]))
        if kind == "tools":
            ids = []
            for _ in range(draw(st.integers(1, 3))):
                call += 1
                ids.append(f"call_{call}")
            calls = [
                {"id": i, "type": "function", "function": {"name": "read", "arguments": "{}"}}
                for i in ids
            ]
            out.append({"role": "assistant", "content": text(20), "tool_calls": calls})
            out += [{"role": "tool", "tool_call_id": i, "content": text(400)} for i in ids]
        else:
            out.append({"role": kind, "content": text(200) or "ok"})
    return out


def as_langchain(messages: list[dict[str, Any]]) -> list[Any]:
    out: list[Any] = []
    for m in messages:
        if m["role"] == "system":
            out.append(SystemMessage(m["content"]))
        elif m["role"] == "user":
            out.append(HumanMessage(m["content"]))
        elif m["role"] == "tool":
            out.append(ToolMessage(m["content"], tool_call_id=m["tool_call_id"]))
        else:
            calls = [
                {"name": c["function"]["name"], "args": {}, "id": c["id"]}
                for c in m.get("tool_calls", [])
            ]
            out.append(AIMessage(m["content"], tool_calls=calls))
    return out


def shape(messages: list[Any], dialect: Any) -> list[tuple[str, tuple[str, ...], str | None]]:
    return [(t.role, t.calls, t.answers) for t in (dialect.turn(m, "o200k_base") for m in messages)]


def assert_no_orphans(messages: list[Any], dialect: Any) -> None:
    """Each tool result follows the assistant turn that called it (with only results of
    the same turn between), and each call of that turn has its result."""
    turns = shape(messages, dialect)
    pending: set[str] = set()
    for role, calls, answers in turns:
        if role == "tool":
            assert answers in pending, f"orphaned tool result {answers}: {turns}"
            pending.discard(answers)
            continue
        assert not pending, f"calls without results {pending}: {turns}"
        pending = set(calls)
    assert not pending


async def summarize(transcript: str, most: int) -> str:
    return " ".join(["summary"] * (most * 2))  # rambles past its bound: it gets cut


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    conversation=conversations(),
    window=st.integers(120, 6000),
    share=st.floats(0.5, 1.0),
    reserve=st.integers(0, 60),
    keep_last=st.integers(1, 8),
    langchain=st.booleans(),
)
def test_fitting_never_orphans_a_tool_result_never_overruns_and_keeps_the_system_prompt(
    conversation, window, share, reserve, keep_last, langchain
) -> None:
    dialect = LANGCHAIN if langchain else OPENAI
    messages = as_langchain(conversation) if langchain else conversation
    limit = max(1, int(window * share) - reserve)
    systems = [
        m for m, t in zip(messages, shape(messages, dialect), strict=True) if t[0] == "system"
    ]
    system_tokens = sum(dialect.turn(m, "o200k_base").tokens for m in systems)

    async def run() -> Any:
        return await fit(
            messages, dialect, window=window, share=share, reserve=reserve,
            keep_last=keep_last, summarize=summarize,
        )  # fmt: skip

    if system_tokens > limit:
        with pytest.raises(WindowError, match="system messages"):
            asyncio.run(run())
        return
    try:
        fitted = asyncio.run(run())
    except WindowError:
        # Only when the system prompt and the latest turn, whole, do not fit together:
        # otherwise dropping everything else would have fitted.
        turns = shape(messages, dialect)
        start = len(turns) - 1
        while turns[start][0] == "tool":  # the latest unit: a call and its results
            start -= 1
        latest = sum(dialect.turn(m, "o200k_base").tokens for m in messages[start:])
        assert system_tokens + latest > limit
        return
    out, trimmed = fitted.messages, fitted.trimmed
    assert out[: len(systems)] == systems  # the system prompt, whole and first
    assert_no_orphans(out, dialect)
    counted = sum(dialect.turn(m, "o200k_base").tokens for m in out)
    if trimmed.tokens_before == -1:  # not tokenized: its bytes alone showed it fits
        assert out == list(messages) and not trimmed.changed and counted <= limit
        return
    assert trimmed.tokens_after == counted
    if trimmed.tokens_before <= limit:
        assert out == list(messages) and not trimmed.changed
        return
    assert trimmed.tokens_after <= limit, trimmed
    # The newest message is kept (its text may be cut).
    assert shape(out, dialect)[-1] == shape(messages, dialect)[-1]


def test_a_long_middle_becomes_a_summary_between_the_first_turn_and_the_last_ones() -> None:
    first = {"role": "user", "content": "Refactor the parser. " * 5}
    middle = [
        {"role": "assistant" if i % 2 else "user", "content": f"step {i}: " + "detail " * 80}
        for i in range(10)
    ]
    last = [{"role": "user", "content": "Now add tests."}]
    messages = [{"role": "system", "content": "You are careful."}, first, *middle, *last]
    asked: list[tuple[str, int]] = []

    async def fast(transcript: str, most: int) -> str:
        asked.append((transcript, most))
        return "The parser was split in two; tests are missing."

    fitted = asyncio.run(fit(messages, OPENAI, window=1000, share=0.5, keep_last=2, summarize=fast))
    out, trimmed = fitted.messages, fitted.trimmed
    assert out[:2] == messages[:2] and out[-2:] == messages[-2:]
    assert out[2]["content"].startswith("[Summary of 9 earlier messages")
    assert "split in two" in out[2]["content"]
    assert trimmed.summary == "written" and trimmed.summarized == 9
    assert "step 0:" in asked[0][0] and asked[0][1] <= 512
    assert trimmed.tokens_after <= 500 < trimmed.tokens_before


def test_without_a_summary_a_note_says_how_many_messages_were_left_out() -> None:
    messages = [{"role": "user", "content": "start"}] + [
        {"role": "assistant", "content": "word " * 100} for _ in range(8)
    ]

    async def broken(transcript: str, most: int) -> str:
        raise TimeoutError("the fast model took too long")

    fitted = asyncio.run(
        fit(messages, OPENAI, window=400, share=1.0, keep_last=2, summarize=broken)
    )
    assert fitted.messages[1] == {
        "role": "user",
        "content": "[6 earlier messages were left out to fit the context window]",
    }
    assert fitted.trimmed.summary == "note" and "TimeoutError" in fitted.trimmed.reason


def test_one_huge_tool_result_is_cut_in_the_middle_and_says_so() -> None:
    log = "line one\n" + "noise " * 3000 + "\nthe error is here"
    calls = [{"id": "c1", "type": "function", "function": {"name": "run", "arguments": "{}"}}]
    messages = [
        {"role": "user", "content": "Why does it fail?"},
        {"role": "assistant", "content": "", "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": log},
    ]
    fitted = asyncio.run(fit(messages, OPENAI, window=800, share=1.0))
    kept = fitted.messages[-1]["content"]
    assert kept.startswith("line one") and kept.endswith("the error is here")
    assert "tokens cut to fit the context window" in kept
    assert fitted.trimmed.cut == [2] and fitted.trimmed.tokens_after <= 800
    assert count(kept) < count(log)


def test_trimmed_reports_itself_as_a_dict() -> None:
    assert Trimmed(10, 20, 5, summarized=3).as_dict()["summarized"] == 3
