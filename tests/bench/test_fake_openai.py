"""``bench.fake_openai``: the fake OpenAI upstream, driven by the real ``openai`` SDK.

Every test starts a server of its own and stops it, so no state leaks between tests.
"""

from __future__ import annotations

import asyncio
import json
import math
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from bench.fake_openai import FakeOpenAI, FakeOpenAIThread

ROOT = Path(__file__).resolve().parents[2]
USER = [{"role": "user", "content": "hello there"}]
WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    server = FakeOpenAI()
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def client(fake: FakeOpenAI) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=fake.base_url, api_key="x", max_retries=0) as c:
        yield c


async def chat(client: openai.AsyncOpenAI, **kwargs: Any) -> Any:
    kwargs.setdefault("messages", USER)
    kwargs.setdefault("model", "gpt-4o-mini")
    return await client.chat.completions.create(**kwargs)


async def stream_chunks(client: openai.AsyncOpenAI, **kwargs: Any) -> list[Any]:
    stream = await chat(client, stream=True, **kwargs)
    return [chunk async for chunk in stream]


# --- answers ------------------------------------------------------------------------


async def test_reply_echoes_the_last_user_message(client: openai.AsyncOpenAI) -> None:
    reply = await chat(client, model="my-model", n=2)

    assert reply.object == "chat.completion"
    assert reply.model == "my-model"
    assert [c.index for c in reply.choices] == [0, 1]
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == "ok: hello there"
    assert reply.choices[0].finish_reason == "stop"
    usage = reply.usage
    assert usage is not None and usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens

    long = await chat(client, messages=[{"role": "user", "content": "x" * 500}])
    assert long.choices[0].message.content == "ok: " + "x" * 200


async def test_stream_sends_role_content_finish_and_usage(client: openai.AsyncOpenAI) -> None:
    chunks = await stream_chunks(client, stream_options={"include_usage": True})

    assert all(c.object == "chat.completion.chunk" and c.model == "gpt-4o-mini" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    with_choices = [c for c in chunks if c.choices]
    text = "".join(c.choices[0].delta.content or "" for c in with_choices)
    assert text == "ok: hello there"
    assert sum(1 for c in with_choices if c.choices[0].delta.content) == 3
    assert with_choices[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3

    plain = await stream_chunks(client)
    assert all(c.choices for c in plain) and all(c.usage is None for c in plain)


async def test_tool_call_round_trip(client: openai.AsyncOpenAI) -> None:
    first = await chat(client, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.id.startswith("call_") and call.type == "function"
    assert (call.function.name, call.function.arguments) == ("get_weather", "{}")

    messages = [
        *USER,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    second = await chat(client, tools=[WEATHER], messages=messages)
    assert second.choices[0].message.content == "tool said: sunny"
    assert second.choices[0].message.tool_calls is None

    # tool_choice "none" answers in text.
    none = await chat(client, tools=[WEATHER], tool_choice="none")
    assert none.choices[0].message.content == "ok: hello there"


async def test_streamed_tool_call_comes_as_indexed_deltas(client: openai.AsyncOpenAI) -> None:
    chunks = await stream_chunks(client, tools=[WEATHER])

    calls = [tc for c in chunks for tc in c.choices[0].delta.tool_calls or []]
    assert {tc.index for tc in calls} == {0}
    assert calls[0].id.startswith("call_") and calls[0].function.name == "get_weather"
    assert "".join(tc.function.arguments or "" for tc in calls) == "{}"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_json_modes_give_parseable_json(client: openai.AsyncOpenAI) -> None:
    schema = {"name": "echo", "schema": {"type": "object"}}
    for fmt in ({"type": "json_object"}, {"type": "json_schema", "json_schema": schema}):
        reply = await chat(client, response_format=fmt)
        assert json.loads(reply.choices[0].message.content) == {"ok": True, "echo": "hello there"}


async def test_models_and_embeddings(client: openai.AsyncOpenAI) -> None:
    models = await client.models.list()
    assert "gpt-4o-mini" in [m.id for m in models.data]

    # The SDK asks for base64 by default and decodes it; floats must give the same numbers.
    b64 = await client.embeddings.create(model="text-embedding-3-small", input=["a", "b", "a"])
    floats = await client.embeddings.create(
        model="text-embedding-3-small", input=["a", "b"], encoding_format="float"
    )
    vectors = [d.embedding for d in b64.data]
    assert [d.index for d in b64.data] == [0, 1, 2]
    assert all(len(v) == 8 for v in vectors)
    assert vectors[0] == vectors[2] != vectors[1]
    assert vectors[:2] == [d.embedding for d in floats.data]
    assert math.isclose(math.fsum(x * x for x in vectors[0]), 1.0, rel_tol=1e-5)
    assert b64.usage.prompt_tokens == 3


# --- faults ---------------------------------------------------------------------------


async def test_429_sets_retry_after(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script({"status": 429, "retry_after": 1.5})

    with pytest.raises(openai.RateLimitError) as caught:
        await chat(client)
    assert caught.value.response.headers["retry-after"] == "1.5"
    assert caught.value.code == "rate_limit_exceeded"
    # The step is consumed: the next request is answered.
    assert (await chat(client)).choices[0].message.content == "ok: hello there"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors(fake: FakeOpenAI, client: openai.AsyncOpenAI, status: int) -> None:
    fake.script({"status": status})

    with pytest.raises(openai.InternalServerError) as caught:
        await chat(client)
    assert caught.value.status_code == status
    assert caught.value.type == "server_error"


async def test_custom_error_body_and_reply(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script({"status": 429, "body": {"error": {"message": "slow down"}}}, {"reply": "hi!"})

    with pytest.raises(openai.RateLimitError, match="slow down"):
        await chat(client)
    assert (await chat(client)).choices[0].message.content == "hi!"


async def test_delay_then_normal_answer(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script({"delay": 0.2}, {"delay": 0.5})

    start = time.perf_counter()
    reply = await chat(client)
    assert time.perf_counter() - start >= 0.2
    assert reply.choices[0].message.content == "ok: hello there"

    # A client that gives up first times out; the server shrugs it off.
    with pytest.raises(openai.APITimeoutError):
        await chat(client, timeout=0.05)
    assert (await chat(client)).choices[0].message.content == "ok: hello there"


async def test_chunk_delay_paces_the_stream(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script({"chunk_delay": 0.02})

    stream = await chat(client, stream=True)
    arrivals = [time.perf_counter() async for _ in stream]
    assert len(arrivals) == 5
    assert arrivals[-1] - arrivals[0] >= 0.06  # four gaps of 20 ms, with slack


async def test_cut_stream_raises_in_iteration(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script({"cut_after_chunks": 2})

    got = []
    stream = await chat(client, stream=True)
    with pytest.raises(openai.APIConnectionError):  # wraps the incomplete chunked read
        async for chunk in stream:
            got.append(chunk)
    assert len(got) == 2


async def test_cut_without_stream_closes_the_connection(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    fake.script({"cut_after_chunks": 0})

    with pytest.raises(openai.APIConnectionError):
        await chat(client)
    assert (await chat(client)).choices[0].message.content == "ok: hello there"


async def test_garbage(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script({"garbage": True}, {"garbage": True})

    with pytest.raises(json.JSONDecodeError):
        await chat(client)
    with pytest.raises(json.JSONDecodeError):
        await stream_chunks(client)


async def test_steps_for_a_model_wait_for_it(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    fake.script({"status": 503, "model": "b"}, {"reply": "any model"})

    assert (await chat(client, model="a")).choices[0].message.content == "any model"
    assert (await chat(client, model="a")).choices[0].message.content == "ok: hello there"
    with pytest.raises(openai.InternalServerError):
        await chat(client, model="b")


async def test_bad_steps_are_refused(fake: FakeOpenAI) -> None:
    with pytest.raises(ValueError, match="bad script step"):
        fake.script({"stauts": 500})


# --- control API, auth, connections ------------------------------------------------


async def test_control_api_over_http(fake: FakeOpenAI, client: openai.AsyncOpenAI) -> None:
    base = fake.base_url.removesuffix("/v1")
    async with httpx.AsyncClient(base_url=base) as http:
        r = await http.post("/_control/script", json={"steps": [{"status": 503}, {"delay": 0}]})
        assert r.json() == {"queued": 2}
        assert (await http.get("/_control/script")).json()["steps"][0] == {"status": 503}
        assert (await http.post("/_control/script", json={"steps": [{"x": 1}]})).status_code == 400
        assert (await http.delete("/_control/script")).status_code == 200
        assert await chat(client, user="u1")

        r = await http.post("/_control/script", json={"steps": [{"status": 503}]})
        with pytest.raises(openai.InternalServerError):
            await chat(client)

        (first, second) = (await http.get("/_control/requests")).json()["requests"]
        assert first["path"] == "/v1/chat/completions"
        assert first["headers"]["authorization"] == "Bearer x"
        assert first["body"]["user"] == "u1" and first["body"]["messages"] == USER
        assert second["body"]["model"] == "gpt-4o-mini"
        assert fake.requests == [first, second]

        await http.delete("/_control/requests")
        assert (await http.get("/_control/requests")).json() == {"requests": []}


async def test_recording_can_be_off() -> None:
    server = FakeOpenAI(record=False)
    await server.start()
    try:
        async with openai.AsyncOpenAI(base_url=server.base_url, api_key="x", max_retries=0) as c:
            await chat(c)
        assert server.requests == []
    finally:
        await server.stop()


async def test_api_key_is_checked_when_set() -> None:
    server = FakeOpenAI(api_key="secret")
    await server.start()
    try:
        for key, ok in (("wrong", False), ("secret", True)):
            async with openai.AsyncOpenAI(
                base_url=server.base_url, api_key=key, max_retries=0
            ) as c:
                if ok:
                    assert (await chat(c)).choices[0].message.content == "ok: hello there"
                else:
                    with pytest.raises(openai.AuthenticationError) as caught:
                        await chat(c)
                    assert caught.value.code == "invalid_api_key"
    finally:
        await server.stop()


async def test_keep_alive_serves_many_requests_on_one_connection(
    fake: FakeOpenAI, client: openai.AsyncOpenAI
) -> None:
    for i in range(60):
        messages = [{"role": "user", "content": f"n{i}"}]
        if i % 3:
            reply = await chat(client, messages=messages)
            assert reply.choices[0].message.content == f"ok: n{i}"
        else:
            chunks = await stream_chunks(client, messages=messages)
            assert "".join(c.choices[0].delta.content or "" for c in chunks) == f"ok: n{i}"
    assert fake.connections_opened == 1
    assert len(fake.requests) == 60


async def test_pipelined_requests_are_answered_in_order(fake: FakeOpenAI) -> None:
    fake.script({"delay": 0.05})  # the first answer waits; the second must still come after it
    reader, writer = await asyncio.open_connection("127.0.0.1", fake.port)
    for word in ("first", "second"):
        body = json.dumps({"model": "m", "messages": [{"role": "user", "content": word}]})
        head = f"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}"
        writer.write(f"{head}\r\n\r\n{body}".encode())
    seen = b""
    while seen.count(b"ok: ") < 2:
        seen += await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    await writer.wait_closed()
    assert seen.index(b"ok: first") < seen.index(b"ok: second")
    assert seen.count(b"HTTP/1.1 200 OK") == 2


async def test_unknown_route_is_a_404(fake: FakeOpenAI) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        r = await http.get("/nope")
        assert r.status_code == 404 and r.json()["error"]["type"] == "invalid_request_error"
        r = await http.post("/chat/completions", content=b"{not json")
        assert r.status_code == 400


def test_thread_runner_for_synchronous_tests() -> None:
    with FakeOpenAIThread() as fake:
        fake.script({"status": 500})
        with openai.OpenAI(base_url=fake.base_url, api_key="x", max_retries=0) as c:
            with pytest.raises(openai.InternalServerError):
                c.chat.completions.create(model="m", messages=USER)
            reply = c.chat.completions.create(model="m", messages=USER)
        assert reply.choices[0].message.content == "ok: hello there"
        assert len(fake.requests) == 2
        fake.clear_requests()
        assert fake.requests == []


def test_cli_serves_until_sigterm() -> None:
    cmd = [sys.executable, "-m", "bench.fake_openai", "--port", "0", "--no-record"]
    with subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            assert line.startswith("listening on http://127.0.0.1:"), line
            with openai.OpenAI(base_url=line.split()[-1], api_key="x", max_retries=0) as c:
                reply = c.chat.completions.create(model="m", messages=USER)
            assert reply.choices[0].message.content == "ok: hello there"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
