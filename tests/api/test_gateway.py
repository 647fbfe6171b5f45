"""The OpenAI-compatible gateway through a real `crewchief serve`, driven by the real `openai`
SDK and `langchain-openai`, with a fake OpenAI-compatible upstream on loopback."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from bench.fake_openai import FakeOpenAIThread
from tests.api.conftest import LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeOpenAIThread]:
    with FakeOpenAIThread() as fake:
        yield fake


@pytest.fixture(scope="module")
def server(
    module_server_factory: Callable[..., LiveServer], upstream: FakeOpenAIThread
) -> LiveServer:
    # Real requests are allowed for this server: its only upstream is the fake on loopback.
    return module_server_factory(
        env={
            "CREWCHIEF_ALLOW_MODEL_REQUESTS": "1",
            "CREWCHIEF_ORCHESTRATOR_MODEL": "openai:upstream-strong",
            "CREWCHIEF_DELEGATE_MODEL": "openai:upstream-cheap",
            "CREWCHIEF_DELEGATE_FALLBACKS": "openai:upstream-spare",
            "CREWCHIEF_FAST_MODEL": "fake:default",
            "OPENAI_BASE_URL": upstream.base_url,
            "OPENAI_API_KEY": "sk-upstream",
            # Circuits stay closed here: the tests share this server and script failures.
            "CREWCHIEF_GATEWAY_CIRCUIT_FAILURES": "1000",
            # The tests check what goes upstream: no earlier exchange may join in (the
            # memory has a test of its own).
            "CREWCHIEF_MEMORY": "false",
        }
    )


@pytest.fixture
def fresh(upstream: FakeOpenAIThread) -> FakeOpenAIThread:
    upstream.clear_script()
    upstream.clear_requests()
    return upstream


def upstream_server(
    factory: Callable[..., LiveServer], upstream: FakeOpenAIThread, env: dict[str, str]
) -> LiveServer:
    """A server of its own whose ``openai`` models are ``upstream`` (real requests on: the
    only upstream is the fake on loopback), with ``env`` over that."""
    base = {
        "CREWCHIEF_ALLOW_MODEL_REQUESTS": "1",
        "OPENAI_BASE_URL": upstream.base_url,
        "OPENAI_API_KEY": "sk-upstream",
    }
    return factory(env={**base, **env})


def client(server: LiveServer, owner: str = "alice") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=server.keys[owner], max_retries=0)


def ledger(server: LiveServer) -> list[dict[str, Any]]:
    import sqlite3

    with sqlite3.connect(server.home / "crewchief.db") as conn:
        rows = conn.execute(
            "SELECT alias, purpose, model, input_tokens, output_tokens, error, owner FROM model_calls"
            " WHERE operation_id IS NULL ORDER BY id"
        ).fetchall()
    keys = ("alias", "purpose", "model", "input", "output", "error", "owner")
    return [dict(zip(keys, row, strict=True)) for row in rows]


def test_a_completion_goes_to_the_roles_model_and_says_so(server, fresh) -> None:
    before = len(ledger(server))
    raw = client(server).chat.completions.with_raw_response.create(
        model="crewchief/architect",
        messages=[{"role": "user", "content": "Design a cache for the parser"}],
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "ok: Design a cache for the parser"
    meta = answer.model_extra["x_crewchief"]
    assert meta["role"] == "architect" and meta["role_source"] == "model"
    assert meta["model"] == "openai:upstream-strong"  # architects run on the orchestrator
    assert meta["fallbacks_tried"] == []
    assert meta["tokens"]["prompt"] == answer.usage.prompt_tokens > 0
    assert raw.headers["x-crewchief-role"] == "architect"
    assert raw.headers["x-crewchief-model"] == "openai:upstream-strong"
    sent = fresh.requests[-1]
    assert sent["body"]["model"] == "upstream-strong"
    assert sent["headers"]["authorization"] == "Bearer sk-upstream"  # not the caller's key
    rows = ledger(server)[before:]
    assert rows == [
        {
            "alias": "gateway",
            "purpose": "gateway:architect",
            "model": "openai:upstream-strong",
            "input": answer.usage.prompt_tokens,
            "output": answer.usage.completion_tokens,
            "error": None,
            "owner": "alice",
        }
    ]
    # A model the price table does not know: it costs 0 and says it is unpriced.
    assert meta["cost_usd"] == 0.0 and meta["cost_source"] == "unpriced"
    # A priced model: its tokens at the shipped prices (gpt-4o-mini: $0.15 and $0.60 per M).
    priced = client(server).chat.completions.create(
        model="openai:gpt-4o-mini", messages=[{"role": "user", "content": "Price this"}]
    )
    usage = priced.usage
    expected = (usage.prompt_tokens * 0.15 + usage.completion_tokens * 0.60) / 1e6
    assert priced.model_extra["x_crewchief"]["cost_usd"] == pytest.approx(expected)
    assert priced.model_extra["x_crewchief"]["cost_source"] == "table"


def costs(server: LiveServer) -> list[tuple[Any, ...]]:
    """``(purpose, role, model, cached input tokens, cost, its source)`` of each ledger row
    of the gateway."""
    import sqlite3

    with sqlite3.connect(server.home / "crewchief.db") as conn:
        return conn.execute(
            "SELECT purpose, role, model, cached_input_tokens, cost_usd, cost_source"
            " FROM model_calls WHERE operation_id IS NULL ORDER BY id"
        ).fetchall()


def test_every_gateway_call_is_priced_and_says_how(server, fresh) -> None:
    api = client(server)
    before = len(costs(server))
    # From the price table, cached prompt tokens at their own price.
    fresh.script({"usage": {"prompt_tokens_details": {"cached_tokens": 2}}})
    priced = api.chat.completions.create(
        model="openai:gpt-4o-mini", messages=[{"role": "user", "content": "Price this answer"}]
    )
    meta, u = priced.model_extra["x_crewchief"], priced.usage
    expected = ((u.prompt_tokens - 2) * 0.15 + 2 * 0.075 + u.completion_tokens * 0.60) / 1e6
    assert meta["tokens"]["cached"] == 2 and meta["cost_source"] == "table"
    assert meta["cost_usd"] == pytest.approx(expected, abs=1e-8)
    # The cost an upstream states wins, streamed too.
    fresh.script({"usage": {"cost": 0.0042}})
    chunks = list(
        api.chat.completions.create(
            model="crewchief/architect", messages=[{"role": "user", "content": "Plan it"}],
            stream=True,
        )
    )  # fmt: skip
    streamed = chunks[-1].model_extra["x_crewchief"]
    assert (streamed["cost_usd"], streamed["cost_source"]) == (0.0042, "provider")
    # The rewrite made for a role is the role's too (the scripted fast model: unpriced).
    review = api.chat.completions.create(
        model="crewchief/review",
        messages=[{"role": "user", "content": LONG.replace("parser", "billing")}],
    )
    assert review.model_extra["x_crewchief"]["rewrite"]["applied"] is True
    rows = costs(server)[before:]
    assert rows[0][2:] == ("openai:gpt-4o-mini", 2, pytest.approx(expected, abs=1e-8), "table")
    assert rows[1:] == [
        ("gateway:architect", "architect", "openai:upstream-strong", 0, 0.0042, "provider"),
        ("gateway:rewrite:review", "review", "fake:default", 0, 0.0, "unpriced"),
        ("gateway:review", "review", "openai:upstream-cheap", 0, 0.0, "unpriced"),
    ]
    usage = httpx.get(
        f"{server.url}/v1/usage?group_by=role&since=1h", headers=server.auth(), timeout=10
    ).json()
    by_role = {row["group"]["role"]: row for row in usage["rows"]}
    assert by_role["architect"]["cost_usd"] >= 0.0042
    assert by_role["review"]["unpriced_calls"] >= 2


def test_the_role_comes_from_the_body_then_the_header_then_the_model(server, fresh) -> None:
    api = client(server)
    messages = [{"role": "user", "content": "hi"}]
    by_body = api.chat.completions.create(
        model="crewchief/architect", messages=messages, extra_body={"role": "testing"}
    )
    assert by_body.model_extra["x_crewchief"]["role"] == "testing"
    assert by_body.model_extra["x_crewchief"]["role_source"] == "body"
    by_header = api.chat.completions.create(
        model="auto", messages=messages, extra_headers={"X-Crewchief-Role": "debugger"}
    )
    assert by_header.model_extra["x_crewchief"]["role"] == "debugger"
    assert by_header.model_extra["x_crewchief"]["model"] == "openai:upstream-strong"
    plain = api.chat.completions.create(model="auto", messages=messages)
    assert plain.model_extra["x_crewchief"]["role"] == "general"
    assert plain.model_extra["x_crewchief"]["role_source"] == "inferred"
    assert plain.model_extra["x_crewchief"]["model"] == "openai:upstream-cheap"
    # Nothing names a role: it is read from the system prompt and the request.
    debugging = api.chat.completions.create(
        model="auto",
        messages=[
            {"role": "system", "content": "You are an expert software debugger."},
            {"role": "user", "content": "KeyError: 'user' in handlers.py line 40, why?"},
        ],
    )
    meta = debugging.model_extra["x_crewchief"]
    assert (meta["role"], meta["role_source"]) == ("debugger", "inferred")
    assert meta["model"] == "openai:upstream-strong" and meta["role_reasons"]
    # The gateway's own fields never reach the upstream.
    assert all("role" not in r["body"] for r in fresh.requests)


def test_streaming_with_usage_ends_with_the_metadata(server, fresh) -> None:
    stream = client(server).chat.completions.create(
        model="crewchief/implementation",
        messages=[{"role": "user", "content": "Write the loop"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "ok: Write the loop"
    last = chunks[-1]
    assert last.usage is not None and last.usage.completion_tokens > 0
    assert last.model_extra["x_crewchief"]["model"] == "openai:upstream-cheap"
    without = list(
        client(server).chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "x"}], stream=True
        )
    )
    assert without[-1].usage is None  # not asked for: not sent
    assert "x_crewchief" in without[-1].model_extra


def test_tool_calls_and_json_mode_pass_through_intact(server, fresh) -> None:
    api = client(server)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "read_file",
                "description": "Read a file",
                "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
            },
        }
    ]
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is in setup.py?"}]
    first = api.chat.completions.create(model="auto", messages=messages, tools=tools)
    call = first.choices[0].message.tool_calls[0]
    assert call.function.name == "read_file"
    assert fresh.requests[-1]["body"]["tools"] == tools
    messages += [
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "print('hi')"},
    ]
    second = api.chat.completions.create(model="auto", messages=messages, tools=tools)
    assert second.choices[0].message.content == "tool said: print('hi')"
    json_mode = api.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "give json"}],
        response_format={"type": "json_object"},
    )
    assert json.loads(json_mode.choices[0].message.content)["ok"] is True


def test_langchain_chat_openai_works_through_the_gateway(server, fresh) -> None:
    from langchain_openai import ChatOpenAI

    chat = ChatOpenAI(
        base_url=f"{server.url}/v1",
        api_key=server.keys["alice"],
        model="crewchief/review",
        max_retries=0,
    )
    assert chat.invoke("Review this").content == "ok: Review this"
    streamed = "".join(chunk.text for chunk in chat.stream("Stream this"))
    assert streamed == "ok: Stream this"


def test_a_failing_model_falls_back_and_the_ledger_shows_both(server, fresh) -> None:
    fresh.script(
        {"status": 503, "model": "upstream-cheap"}, {"status": 503, "model": "upstream-cheap"}
    )
    before = len(ledger(server))
    answer = client(server).chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "still there?"}]
    )
    meta = answer.model_extra["x_crewchief"]
    assert meta["model"] == "openai:upstream-spare"
    assert [t["model"] for t in meta["fallbacks_tried"]] == ["openai:upstream-cheap"] * 2
    rows = ledger(server)[before:]
    assert [(r["model"], r["error"] is None) for r in rows] == [
        ("openai:upstream-cheap", False),
        ("openai:upstream-cheap", False),
        ("openai:upstream-spare", True),
    ]


def test_errors_come_in_openais_shape_and_map_to_the_sdks_exceptions(server, fresh) -> None:
    api = client(server)
    with pytest.raises(openai.NotFoundError) as unknown:
        api.chat.completions.create(
            model="gpt-nonsense", messages=[{"role": "user", "content": "x"}]
        )
    assert unknown.value.body["code"] == "model_not_found"
    assert unknown.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as bad:
        api.chat.completions.create(model="auto", messages=[{"role": "robot", "content": "x"}])
    assert bad.value.body["param"] == "messages.0.role"
    with pytest.raises(openai.BadRequestError) as bad_role:
        api.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "x"}], extra_body={"role": "chef"}
        )
    assert bad_role.value.body["param"] == "role"
    wrong_key = openai.OpenAI(base_url=f"{server.url}/v1", api_key="cc_nope", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as auth:
        wrong_key.chat.completions.create(model="auto", messages=[{"role": "user", "content": "x"}])
    assert auth.value.body["type"] == "authentication_error"
    invalid = httpx.post(
        f"{server.url}/v1/chat/completions", content=b"{nope", headers=server.auth()
    )
    assert invalid.status_code == 400 and invalid.json()["error"]["param"] == "body"


def test_a_stream_cut_after_its_first_token_ends_with_an_error_chunk(server, fresh) -> None:
    fresh.script({"cut_after_chunks": 2})
    stream = client(server).chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "long answer"}], stream=True
    )
    received = []
    with pytest.raises(openai.APIError) as broke:
        for chunk in stream:
            received.append(chunk)
    assert received, "the first chunks arrived before the cut"
    assert "upstream" in str(broke.value.message)
    assert len(fresh.requests) == 1  # no fail-over once the client has tokens


def test_models_lists_roles_auto_and_aliases(server) -> None:
    names = [m.id for m in client(server).models.list()]
    assert "crewchief/architect" in names and "auto" in names and "delegate" in names


def test_a_model_that_keeps_failing_is_skipped_until_its_cooldown_ends(
    live_server_factory: Callable[..., LiveServer], fresh: FakeOpenAIThread
) -> None:
    # One model, no fallback: the case where retrying on every request hurts most.
    server = upstream_server(
        live_server_factory,
        fresh,
        {
            "CREWCHIEF_MODEL": "openai:lonely",
            "CREWCHIEF_GATEWAY_RETRIES": "1",
            "CREWCHIEF_GATEWAY_CIRCUIT_FAILURES": "2",
            "CREWCHIEF_GATEWAY_CIRCUIT_COOLDOWN": "2",
        },
    )
    api = client(server)
    ask = [{"role": "user", "content": "x"}]
    fresh.script(*[{"status": 500}] * 2)
    with pytest.raises(openai.APIStatusError) as down:
        api.chat.completions.create(model="auto", messages=ask)
    assert down.value.status_code == 502 and "openai:lonely" in down.value.message
    assert len(fresh.requests) == 2  # the first try and one retry: the circuit is open now
    with pytest.raises(openai.APIStatusError) as skipped:
        api.chat.completions.create(model="auto", messages=ask)
    assert skipped.value.status_code == 503 and skipped.value.body["code"] == "circuit_open"
    assert int(skipped.value.response.headers["retry-after"]) >= 1
    assert len(fresh.requests) == 2  # not sent upstream
    time.sleep(2.2)  # the cooldown ends: one trial goes through, and it succeeds
    answer = api.chat.completions.create(model="auto", messages=ask)
    assert answer.choices[0].message.content == "ok: x"
    assert len(fresh.requests) == 3


def test_429_with_retry_after_is_waited_for_then_retried(server, fresh) -> None:
    fresh.script({"status": 429, "retry_after": 0.5, "model": "upstream-cheap"})
    started = time.monotonic()
    answer = client(server).chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "patience"}]
    )
    assert time.monotonic() - started >= 0.5
    meta = answer.model_extra["x_crewchief"]
    assert meta["model"] == "openai:upstream-cheap"  # the same model, after its wait
    assert len(meta["fallbacks_tried"]) == 1 and "429" in meta["fallbacks_tried"][0]["error"]


def test_garbage_and_timeouts_fall_back(server, fresh) -> None:
    fresh.script(
        {"garbage": True, "model": "upstream-cheap"}, {"garbage": True, "model": "upstream-cheap"}
    )
    answer = client(server).chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "sane?"}]
    )
    assert answer.model_extra["x_crewchief"]["model"] == "openai:upstream-spare"


def test_a_repeated_deterministic_request_is_answered_from_the_cache(server, fresh) -> None:
    api = client(server)
    ask = [{"role": "user", "content": "What is 2 + 2? (cached)"}]
    first = api.chat.completions.with_raw_response.create(model="auto", messages=ask, temperature=0)
    assert first.headers["x-crewchief-cache"] == "miss"
    again = api.chat.completions.with_raw_response.create(model="auto", messages=ask, temperature=0)
    assert again.headers["x-crewchief-cache"] == "hit"
    assert again.parse().model_extra["x_crewchief"]["cache_hit"] is True
    assert again.parse().choices[0].message.content == first.parse().choices[0].message.content
    assert len(fresh.requests) == 1
    # Another owner never gets alice's entry.
    bobs = client(server, "bob").chat.completions.with_raw_response.create(
        model="auto", messages=ask, temperature=0
    )
    assert bobs.headers["x-crewchief-cache"] == "miss" and len(fresh.requests) == 2
    # Cache-Control: no-cache asks the model again.
    bypass = api.chat.completions.with_raw_response.create(
        model="auto", messages=ask, temperature=0, extra_headers={"Cache-Control": "no-cache"}
    )
    assert bypass.headers["x-crewchief-cache"] == "bypass" and len(fresh.requests) == 3
    # A different request, a sampled one, or one that opts out: never from the cache.
    other = api.chat.completions.with_raw_response.create(
        model="auto", messages=ask, temperature=0, max_tokens=5
    )
    assert other.headers["x-crewchief-cache"] == "miss"
    for _ in range(2):
        sampled = api.chat.completions.with_raw_response.create(model="auto", messages=ask)
        assert sampled.headers["x-crewchief-cache"] == "off"
    opted_out = api.chat.completions.with_raw_response.create(
        model="auto", messages=ask, temperature=0, extra_body={"x_crewchief": {"cache": False}}
    )
    assert opted_out.headers["x-crewchief-cache"] == "off"
    assert len(fresh.requests) == 7

    # Streams: a streamed request gets the cached answer as chunks, and a streamed answer
    # is stored whole, for streams and plain requests alike.
    def streamed(messages: list[dict[str, str]]) -> tuple[str, str, Any]:
        raw = api.chat.completions.with_raw_response.create(
            model="auto",
            messages=messages,
            temperature=0,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(raw.parse())
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return raw.headers["x-crewchief-cache"], text, chunks[-1]

    state, text, last = streamed(ask)
    assert (state, text) == ("hit", first.parse().choices[0].message.content)
    assert last.model_extra["x_crewchief"]["cache_hit"] is True and last.usage.total_tokens > 0
    assert len(fresh.requests) == 7
    new = [{"role": "user", "content": "Streamed first (cached)"}]
    state, text, last = streamed(new)
    assert state == "miss" and text == "ok: Streamed first (cached)"
    assert streamed(new)[:2] == ("hit", text)
    plain = api.chat.completions.with_raw_response.create(model="auto", messages=new, temperature=0)
    assert plain.headers["x-crewchief-cache"] == "hit"
    assert plain.parse().choices[0].message.content == text
    assert len(fresh.requests) == 8
    # A streamed tool call comes back from the cache as a tool call.
    tools = [{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}]
    calls = []
    for _ in range(2):
        stream = api.chat.completions.create(
            model="auto", messages=new, temperature=0, tools=tools, stream=True
        )
        deltas = [c.choices[0].delta for c in stream if c.choices]
        parts = [t for d in deltas for t in d.tool_calls or ()]
        calls.append(
            (
                [t.function.name for t in parts if t.function.name],
                [t.id for t in parts if t.id],
                "".join(t.function.arguments or "" for t in parts),
            )
        )
    assert calls[0] == calls[1] and calls[0][0] == ["lookup"]
    assert len(fresh.requests) == 9


def test_api_instances_on_one_redis_share_the_cache(
    live_server_factory: Callable[..., LiveServer],
    fresh: FakeOpenAIThread,
    redis_url: str,
    redis_prefix: str,
) -> None:
    env = {
        "CREWCHIEF_ALLOW_MODEL_REQUESTS": "1",
        "CREWCHIEF_MODEL": "openai:shared",
        "CREWCHIEF_REDIS_URL": redis_url,
        "CREWCHIEF_REDIS_PREFIX": redis_prefix,
        "OPENAI_BASE_URL": fresh.base_url,
        "OPENAI_API_KEY": "sk-upstream",
    }
    a, b = live_server_factory(env=env), live_server_factory(env=env)
    ask = [{"role": "user", "content": "seeded question"}]
    first = client(a).chat.completions.create(model="auto", messages=ask, seed=3)
    assert first.model_extra["x_crewchief"]["cache_hit"] is False
    second = client(b).chat.completions.create(model="auto", messages=ask, seed=3)
    assert second.model_extra["x_crewchief"]["cache_hit"] is True  # the same owner, alice
    assert len(fresh.requests) == 1


def test_a_conversation_keeps_its_history_per_owner_within_the_window(server, fresh) -> None:
    api = client(server)
    conversation = {"conversation_id": "conv-1"}
    api.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "My name is Ada."}],
        extra_body=conversation,
    )
    second = api.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "What is my name?"}],
        extra_body=conversation,
    )
    sent = fresh.requests[-1]["body"]["messages"]
    assert [m["content"] for m in sent] == [
        "My name is Ada.",
        "ok: My name is Ada.",
        "What is my name?",
    ]
    assert second.model_extra["x_crewchief"]["context_messages_added"] == 2
    # The header works too, and a stream's answer is kept like any other.
    list(
        api.chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "Thanks."}],
            stream=True,
            extra_headers={"X-Crewchief-Conversation": "conv-1"},
        )
    )
    assert len(fresh.requests[-1]["body"]["messages"]) == 5
    third = api.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Bye."}], extra_body=conversation
    )
    assert [m["content"] for m in fresh.requests[-1]["body"]["messages"]][-3:] == [
        "Thanks.",
        "ok: Thanks.",
        "Bye.",
    ]
    assert third.model_extra["x_crewchief"]["context_messages_added"] == 6
    # Another owner's conversation of the same name is another conversation.
    client(server, "bob").chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Who am I?"}], extra_body=conversation
    )
    assert [m["content"] for m in fresh.requests[-1]["body"]["messages"]] == ["Who am I?"]
    # An answer that may take nearly the whole window leaves room for the newest history only.
    tight = api.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "Again?"}],
        max_tokens=32768 - 40,
        extra_body=conversation,
    )
    meta = tight.model_extra["x_crewchief"]
    assert 0 < meta["context_messages_added"] < 8 and meta["context_messages_left_out"] > 0
    contents = [m["content"] for m in fresh.requests[-1]["body"]["messages"]]
    assert contents[-1] == "Again?" and "My name is Ada." not in contents


LONG = "Please look at the parser module and tell me whether the caching there is sound"


def test_the_latest_human_message_is_rewritten_for_its_role_once(server, fresh) -> None:
    api = client(server)
    before = len(ledger(server))
    answer = api.chat.completions.create(
        model="crewchief/review", messages=[{"role": "user", "content": LONG}]
    )
    rewrite = answer.model_extra["x_crewchief"]["rewrite"]
    assert rewrite["applied"] is True and rewrite["cached"] is False
    assert rewrite["original_tokens"] > 0 and rewrite["optimized_tokens"] > 0
    # The fast model (the scripted fake here) wrote what the role's model received.
    assert fresh.requests[-1]["body"]["messages"][-1]["content"] == f"Answer to: {LONG}"
    purposes = [r["purpose"] for r in ledger(server)[before:]]
    assert purposes == ["gateway:rewrite:review", "gateway:review"]
    # The same message again: the rewrite comes from the cache, the fast model is not asked.
    again = api.chat.completions.create(
        model="crewchief/review", messages=[{"role": "user", "content": LONG}]
    )
    assert again.model_extra["x_crewchief"]["rewrite"]["cached"] is True
    assert [r["purpose"] for r in ledger(server)[before:]][2:] == ["gateway:review"]


def test_tool_turns_opted_out_and_structured_requests_are_sent_as_they_are(server, fresh) -> None:
    api = client(server)
    tool_turn = [
        {"role": "user", "content": LONG},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "read", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "x" * 80},
    ]
    cases = [
        ({"messages": tool_turn}, "tool message"),
        ({"messages": [{"role": "user", "content": LONG}], "extra_body": {"x_crewchief": {"rewrite": False}}}, "switched off"),
        ({"messages": [{"role": "user", "content": LONG}], "extra_headers": {"X-Crewchief-Rewrite": "off"}}, "switched off"),
        ({"messages": [{"role": "user", "content": "Fix these:\n- the parser cache\n- the lexer"}]}, "already structured"),
    ]  # fmt: skip
    for kwargs, reason in cases:
        answer = api.chat.completions.create(model="auto", **kwargs)
        rewrite = answer.model_extra["x_crewchief"]["rewrite"]
        assert rewrite["applied"] is False and reason in rewrite["reason"], rewrite
        assert fresh.requests[-1]["body"]["messages"] == kwargs["messages"]


def test_a_slow_rewrite_is_dropped_and_the_original_goes(
    live_server_factory: Callable[..., LiveServer], fresh: FakeOpenAIThread, tmp_path
) -> None:
    script = tmp_path / "slow-fast.json"
    script.write_text(
        json.dumps(
            {"fallback": "auto", "rules": [{"node": "gateway", "reply": {"text": "x", "delay": 5}}]}
        )
    )
    server = upstream_server(
        live_server_factory,
        fresh,
        {
            "CREWCHIEF_MODEL": "openai:plain",
            "CREWCHIEF_FAST_MODEL": f"fake:{script}",
            "CREWCHIEF_GATEWAY_REWRITE_TIMEOUT": "0.3",
        },
    )
    answer = client(server).chat.completions.create(
        model="auto", messages=[{"role": "user", "content": LONG}]
    )
    rewrite = answer.model_extra["x_crewchief"]["rewrite"]
    assert rewrite["applied"] is False and "longer than 0.3 s" in rewrite["reason"]
    assert 250 <= rewrite["engineer_ms"] < 3000
    assert fresh.requests[-1]["body"]["messages"][-1]["content"] == LONG


def test_a_rewrite_is_sampled_at_0_3_within_its_bound_and_dropped_when_cut_short(
    live_server_factory: Callable[..., LiveServer], fresh: FakeOpenAIThread
) -> None:
    server = upstream_server(
        live_server_factory,
        fresh,
        {
            "CREWCHIEF_MODEL": "openai:plain",
            "CREWCHIEF_FAST_MODEL": "openai:rewriter",
        },
    )
    api = client(server)
    answer = api.chat.completions.create(
        model="crewchief/review", messages=[{"role": "user", "content": LONG}]
    )
    assert answer.model_extra["x_crewchief"]["rewrite"]["applied"] is True
    asked = next(r["body"] for r in fresh.requests if r["body"]["model"] == "rewriter")
    assert asked["temperature"] == 0.3
    # LONG is about 16 tokens: the bound is the floor, 128 (three times 16 is less).
    assert (asked.get("max_completion_tokens") or asked.get("max_tokens")) == 128
    assert fresh.requests[-1]["body"]["messages"][-1]["content"] == f"ok: {LONG}"

    # A rewrite that runs into its bound is cut mid-thought: the original goes instead.
    fresh.clear_requests()
    fresh.script({"model": "rewriter", "reply": "word " * 300})
    other = LONG + " and whether it is thread-safe"
    answer = api.chat.completions.create(
        model="crewchief/review", messages=[{"role": "user", "content": other}]
    )
    rewrite = answer.model_extra["x_crewchief"]["rewrite"]
    assert rewrite["applied"] is False and "reached its bound (128 tokens)" in rewrite["reason"]
    assert fresh.requests[-1]["body"]["messages"][-1]["content"] == other

    # A message longer than any rewrite may be is sent as written, without asking.
    fresh.clear_requests()
    essay = "Please review this design carefully. " * 200
    answer = api.chat.completions.create(
        model="crewchief/review", messages=[{"role": "user", "content": essay}]
    )
    rewrite = answer.model_extra["x_crewchief"]["rewrite"]
    assert rewrite["applied"] is False and "longer than a rewrite may be" in rewrite["reason"]
    assert [r["body"]["model"] for r in fresh.requests] == ["plain"]


def test_a_request_too_long_for_its_window_has_its_middle_summarized(
    live_server_factory: Callable[..., LiveServer], fresh: FakeOpenAIThread
) -> None:
    server = upstream_server(
        live_server_factory,
        fresh,
        {
            "CREWCHIEF_MODEL": "openai:small-window",
            "CREWCHIEF_FAST_MODEL": "fake:default",
            "CREWCHIEF_GATEWAY_CONTEXT_TOKENS": "2000",  # the window of unknown models
            "CREWCHIEF_GATEWAY_REWRITE": "false",
        },
    )
    calls = [{"id": "c1", "type": "function", "function": {"name": "grep", "arguments": "{}"}}]
    middle: list[dict[str, Any]] = []
    for i in range(6):
        middle.append({"role": "user", "content": f"Step {i}: " + "look at the parser " * 40})
        middle.append({"role": "assistant", "content": "Done. " + "details " * 60})
    messages = [
        {"role": "system", "content": "You are a careful engineer."},
        {"role": "user", "content": "We are refactoring the parser."},
        *middle,
        {"role": "assistant", "content": None, "tool_calls": calls},
        {"role": "tool", "tool_call_id": "c1", "content": "parser.py:10: def parse"},
        {"role": "user", "content": "Now write the tests."},
    ]
    answer = client(server).chat.completions.create(model="crewchief/testing", messages=messages)
    trimmed = answer.model_extra["x_crewchief"]["context_trimmed"]
    assert trimmed["summary"] == "written" and trimmed["summarized"] >= 6
    assert trimmed["tokens_after"] <= trimmed["limit"] < trimmed["tokens_before"]
    sent = fresh.requests[-1]["body"]["messages"]
    assert sent[:2] == messages[:2] and sent[-3:] == messages[-3:]  # the call with its result
    assert sent[2]["content"].startswith("[Summary of ")
    purposes = [r["purpose"] for r in ledger(server)]
    assert purposes == ["gateway:summary:testing", "gateway:testing"]
    # One that cannot fit even shortened: a clear error naming the field.
    huge = [{"role": "system", "content": "rule " * 3000}, {"role": "user", "content": "hi"}]
    with pytest.raises(openai.BadRequestError) as refused:
        client(server).chat.completions.create(model="crewchief/testing", messages=huge)
    assert refused.value.code == "context_length_exceeded"
    assert refused.value.param == "messages"


def test_earlier_exchanges_of_the_same_owner_come_back_as_relevant_history(
    live_server_factory: Callable[..., LiveServer], fresh: FakeOpenAIThread
) -> None:
    server = upstream_server(
        live_server_factory,
        fresh,
        {
            "CREWCHIEF_MODEL": "openai:plain",
            "CREWCHIEF_GATEWAY_REWRITE": "false",
        },
    )
    alice, bob = client(server), client(server, "bob")
    first = alice.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "How should we cache parsed files in the parser?"}],
        extra_body={"conversation_id": "monday"},
    )
    assert first.model_extra["x_crewchief"]["memory"]["added"] == []
    alice.chat.completions.create(  # unrelated: never recalled for the question below
        model="auto", messages=[{"role": "user", "content": "Write a haiku about autumn"}]
    )

    def ask(api: openai.OpenAI, text: str, **extra: Any) -> dict[str, Any]:
        answer = api.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": text}], **extra
        )
        return answer.model_extra["x_crewchief"]["memory"]

    # The exchange is stored in the background, after the answer: wait for it (hang guard).
    deadline = time.monotonic() + 30
    while not (memory := ask(alice, "how do we cache parsed files?"))["added"]:
        assert time.monotonic() < deadline, "the first exchange was never recalled"
        time.sleep(0.2)
    (recalled,) = memory["added"]
    assert recalled["asked"] == "How should we cache parsed files in the parser?"
    assert recalled["conversation"] == "monday" and recalled["score"] >= 0.7
    sent = fresh.requests[-1]["body"]["messages"]
    assert sent[0]["role"] == "system" and "Relevant history" in sent[0]["content"]
    assert "ok: How should we cache parsed files in the parser?" in sent[0]["content"]
    assert "haiku" not in sent[0]["content"]
    assert sent[-1] == {"role": "user", "content": "how do we cache parsed files?"}
    # Another owner asking the same never gets alice's history; nor does alice when she
    # says no, nor within the conversation it came from (its history comes from SQL).
    assert ask(bob, "how do we cache parsed files?")["added"] == []
    assert (
        ask(alice, "how do we cache parsed files?", extra_body={"x_crewchief": {"memory": False}})[
            "added"
        ]
        == []
    )
    same = ask(alice, "how do we cache parsed files?", extra_body={"conversation_id": "monday"})
    assert same["added"] == []

    # Deleting one's memory deletes the conversations and the vectors, and only one's own.
    ask(bob, "Which database do we use in production?")
    gone = httpx.delete(f"{server.url}/v1/memory", headers=server.auth("alice"), timeout=30)
    assert gone.status_code == 200, gone.text
    deleted = gone.json()["deleted"]
    assert deleted["memory"] >= 3 and deleted["conversation_messages"] >= 2
    assert ask(alice, "how do we cache parsed files?")["added"] == []
    again = httpx.delete(f"{server.url}/v1/memory", headers=server.auth("alice"), timeout=30)
    left = again.json()["deleted"]
    assert left.pop("memory") == 1  # the question just asked
    assert left.pop("gateway_responses") == 1  # and its answer, kept to be rated
    assert {"conversation_messages", "semantic_cache", "operation_memory", "profile"} <= set(left)
    assert not any(left.values()), left
    out = server.cli("memory", "forget", "--owner", "bob", "--json")
    assert json.loads(out.stdout)["deleted"]["memory"] >= 1


def test_the_semantic_cache_answers_a_reworded_request_of_the_same_owner(
    live_server_factory: Callable[..., LiveServer], fresh: FakeOpenAIThread
) -> None:
    server = upstream_server(
        live_server_factory,
        fresh,
        {
            "CREWCHIEF_MODEL": "openai:plain",
            "CREWCHIEF_GATEWAY_REWRITE": "false",
            "CREWCHIEF_MEMORY": "false",
            "CREWCHIEF_GATEWAY_SEMANTIC_CACHE": "true",
        },
    )
    alice = client(server)

    def ask(api: openai.OpenAI, text: str, **extra: Any) -> Any:
        return api.chat.completions.with_raw_response.create(
            model="auto", messages=[{"role": "user", "content": text}], temperature=0, **extra
        )

    first = ask(alice, "How do I reverse a list in Python?")
    assert first.headers["x-crewchief-cache"] == "miss"
    # The answer is kept in the background: wait for the reworded request to find it.
    deadline = time.monotonic() + 30
    while (again := ask(alice, "how do I reverse a list in Python")).headers[
        "x-crewchief-cache"
    ] != "semantic":
        assert time.monotonic() < deadline, "the first answer never came back"
        time.sleep(0.2)
    meta = again.parse().model_extra["x_crewchief"]
    assert meta["cache_hit"] is True and meta["cache"]["similarity"] >= 0.95
    assert meta["cache"]["refused"] is None
    # A near miss (another version) is as similar, but never served: the refusal is shown.
    versioned = ask(alice, "How do I reverse a list in Python 2?")
    assert versioned.headers["x-crewchief-cache"] == "miss"
    near = versioned.parse().model_extra["x_crewchief"]["cache"]
    assert near["similarity"] >= 0.95 and near["refused"] == "numbers differ: 2"
    assert (
        versioned.parse().choices[0].message.content == "ok: How do I reverse a list in Python 2?"
    )
    assert meta["cost_usd"] == 0.0
    assert again.parse().choices[0].message.content == "ok: How do I reverse a list in Python?"
    sent = len(fresh.requests)
    streamed = alice.chat.completions.create(
        model="auto",
        messages=[{"role": "user", "content": "How do I reverse a list in Python !"}],
        temperature=0,
        stream=True,
    )
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert text == "ok: How do I reverse a list in Python?" and len(fresh.requests) == sent
    # Another owner, another system prompt, tools, or a sampled request: never.
    assert (
        ask(client(server, "bob"), "how do I reverse a list in Python").headers["x-crewchief-cache"]
        == "miss"
    )
    other_system = alice.chat.completions.with_raw_response.create(
        model="auto",
        messages=[
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "how do I reverse a list in Python"},
        ],
        temperature=0,
    )
    assert other_system.headers["x-crewchief-cache"] == "miss"
    tools = [{"type": "function", "function": {"name": "run", "parameters": {"type": "object"}}}]
    assert (
        ask(alice, "how do I reverse a list in Python", tools=tools).headers["x-crewchief-cache"]
        == "miss"
    )


def test_the_llm_command_line_tool_completes_through_the_gateway(server, fresh, tmp_path) -> None:
    """`llm` (a third-party OpenAI client) with the gateway as an extra OpenAI model."""
    import shutil
    import subprocess
    import sys

    llm = shutil.which("llm", path=str(Path(sys.executable).parent))
    assert llm, "the dev extra installs the llm command"
    home = tmp_path / "llm"
    home.mkdir()
    (home / "extra-openai-models.yaml").write_text(
        "- model_id: crewchief-review\n"
        "  model_name: crewchief/review\n"
        f"  api_base: {server.url}/v1\n"
        "  api_key_name: crewchief\n"
    )
    (home / "keys.json").write_text(json.dumps({"crewchief": server.keys["alice"]}))
    env = {**os.environ, "LLM_USER_PATH": str(home)}
    for extra in ([], ["--no-stream"]):
        done = subprocess.run(
            [llm, "-m", "crewchief-review", *extra, "Is this loop correct?"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == "ok: Is this loop correct?"
        sent = fresh.requests[-1]
        assert sent["body"]["model"] == "upstream-cheap"  # review runs on the delegate
        assert sent["body"].get("stream", False) is (not extra)


def test_embeddings_go_to_the_configured_model(
    live_server_factory: Callable[..., LiveServer], server: LiveServer, fresh: FakeOpenAIThread
) -> None:
    with pytest.raises(openai.NotFoundError) as none:
        client(server).embeddings.create(model="x", input="hello")
    assert "gateway.embeddings_model" in none.value.message
    configured = upstream_server(
        live_server_factory,
        fresh,
        {
            "CREWCHIEF_GATEWAY_EMBEDDINGS_MODEL": "openai:embed-small",
        },
    )
    answer = client(configured).embeddings.create(model="anything", input=["a", "b"])
    assert len(answer.data) == 2 and len(answer.data[0].embedding) == 8
    assert fresh.requests[-1]["body"]["model"] == "embed-small"
    assert fresh.requests[-1]["path"].endswith("/embeddings")
    rows = ledger(configured)
    assert rows[-1]["purpose"] == "gateway:embeddings" and rows[-1]["owner"] == "alice"
    with pytest.raises(openai.BadRequestError) as bad:
        client(configured).embeddings.create(model="anything", input=[])
    assert bad.value.body["param"] == "input"


def test_a_client_that_leaves_mid_stream_still_gets_its_ledger_row(server, fresh) -> None:
    fresh.script({"chunk_delay": 0.5})
    before = len(ledger(server))
    body = {"model": "auto", "stream": True, "messages": [{"role": "user", "content": "long"}]}
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json=body, headers=server.auth(), timeout=10
    ) as response:
        first = next(response.iter_lines())
        assert first.startswith("data: ")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(ledger(server)) == before:
        time.sleep(0.1)
    (row,) = ledger(server)[before:]
    assert row["error"] == "the client left first" and row["model"] == "openai:upstream-cheap"


def test_a_conversation_header_longer_than_128_characters_is_refused(server) -> None:
    with pytest.raises(openai.BadRequestError) as bad:
        client(server).chat.completions.create(
            model="auto",
            messages=[{"role": "user", "content": "x"}],
            extra_headers={"X-Crewchief-Conversation": "c" * 129},
        )
    assert bad.value.body["param"] == "X-Crewchief-Conversation"


def test_ollama_models_are_reached_at_their_openai_compatible_endpoint(
    live_server_factory: Callable[..., LiveServer], fresh: FakeOpenAIThread
) -> None:
    server = live_server_factory(
        env={
            "CREWCHIEF_ALLOW_MODEL_REQUESTS": "1",
            "CREWCHIEF_MODEL": "ollama:llama3.2",
            "OLLAMA_HOST": fresh.base_url.removesuffix("/v1"),  # as Ollama users set it
        }
    )
    answer = client(server).chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "hello"}]
    )
    assert answer.model_extra["x_crewchief"]["model"] == "ollama:llama3.2"
    assert fresh.requests[-1]["path"] == "/v1/chat/completions"
    assert fresh.requests[-1]["body"]["model"] == "llama3.2"


def test_gemini_on_vertex_is_reached_at_its_openai_compatible_endpoint(
    live_server_factory: Callable[..., LiveServer], fresh: FakeOpenAIThread, tmp_path: Path
) -> None:
    # Application Default Credentials as `gcloud auth application-default login` leaves
    # them, with a current token (Google's token endpoint is not reachable here).
    adc = tmp_path / "adc.json"
    adc.write_text(
        json.dumps(
            {
                "type": "authorized_user",
                "client_id": "id.apps.googleusercontent.com",
                "client_secret": "secret",
                "refresh_token": "refresh",
                "token": "ya29.current-token",
                "expiry": "2099-01-01T00:00:00Z",
            }
        )
    )
    config = tmp_path / "crewchief.toml"
    config.write_text(
        '[providers.google]\ntype = "google"\nproject = "my-project"\n'
        f'base_url = "{fresh.base_url}"\n'
    )
    server = live_server_factory(
        env={
            "CREWCHIEF_ALLOW_MODEL_REQUESTS": "1",
            "CREWCHIEF_CONFIG": str(config),
            "CREWCHIEF_MODEL": "google:gemini-2.5-flash",
            "GOOGLE_APPLICATION_CREDENTIALS": str(adc),
        }
    )
    api = client(server)
    answer = api.chat.completions.create(
        model="auto", messages=[{"role": "user", "content": "Rename the helper"}]
    )
    assert answer.choices[0].message.content == "ok: Rename the helper"
    assert answer.model_extra["x_crewchief"]["model"] == "google:gemini-2.5-flash"
    sent = fresh.requests[-1]
    assert sent["headers"]["authorization"] == "Bearer ya29.current-token"
    assert sent["body"]["model"] == "google/gemini-2.5-flash"  # Vertex's name for it
    assert sent["body"]["reasoning_effort"] in ("low", "medium", "high")  # a thinking model
    streamed = "".join(
        chunk.choices[0].delta.content or ""
        for chunk in api.chat.completions.create(
            model="crewchief/review",
            messages=[{"role": "user", "content": "Check it"}],
            stream=True,
        )
        if chunk.choices
    )
    assert streamed == "ok: Check it"


@pytest.mark.local_model
def test_a_local_model_answers_through_the_gateway(
    live_server_factory: Callable[..., LiveServer], tmp_path: Path
) -> None:
    """The real 0.5B model on llama-server, started by the gateway's first request."""
    from crewchief.config import Settings
    from crewchief.local.build import ensure_llama_server
    from crewchief.local.store import ModelStore
    from tests.local.test_local_model import MODEL

    home = Path(os.environ.get("CREWCHIEF_HOME") or Settings().home)  # where it is pulled
    ModelStore(home).pull(MODEL)
    ensure_llama_server(home)
    server = live_server_factory(
        env={
            "CREWCHIEF_HOME": str(home),
            "CREWCHIEF_DATABASE_URL": f"sqlite:///{tmp_path / 'gateway.db'}",
            "CREWCHIEF_CHECKPOINT_URL": str(tmp_path / "checkpoints.db"),
            "CREWCHIEF_ALLOW_MODEL_REQUESTS": "local",
            "CREWCHIEF_MODEL": f"local:{MODEL}",
            "CREWCHIEF_GATEWAY_REWRITE": "0",
        }
    )
    api = openai.OpenAI(
        base_url=f"{server.url}/v1", api_key=server.keys["alice"], max_retries=0, timeout=300
    )
    ask = [{"role": "user", "content": "What is 2 + 2? Answer with the number only."}]
    answer = api.chat.completions.create(model="auto", messages=ask, max_tokens=16, temperature=0)
    assert "4" in (answer.choices[0].message.content or "")
    assert answer.model_extra["x_crewchief"]["model"] == f"local:{MODEL}"
    assert answer.usage.completion_tokens > 0
    streamed = api.chat.completions.create(
        model="auto", messages=ask, max_tokens=16, temperature=0, stream=True
    )
    text = "".join(c.choices[0].delta.content or "" for c in streamed if c.choices)
    assert "4" in text
