"""A fake OpenAI-compatible upstream: instant, deterministic answers and scripted faults.

Two uses:

- tests of the OpenAI-compatible gateway point it at this server and script faults
  (rate limits, 5xx, delays, streams cut mid-way, garbage) to check retries and
  fallbacks;
- the gateway benchmark uses it as a zero-latency upstream, so what it measures is
  the gateway's own overhead. That is why it is plain asyncio and ``httptools``
  (see :mod:`bench._fake_openai_http`) rather than a web framework.

Endpoints, in OpenAI's shapes: ``POST /v1/chat/completions`` (streaming or not,
``n``, tools, JSON mode), ``POST /v1/embeddings`` and ``GET /v1/models``. The reply is
``"ok: " + <last user text>``, a call to the first tool when ``tools`` are offered
after a user message, ``"tool said: ..."`` after a tool result, or
``{"ok": true, "echo": ...}`` in JSON mode; a reply longer than ``max_tokens`` words is
cut there, with ``finish_reason: "length"``.

Faults are steps in a FIFO script, each consumed by the next chat request (whose
``model`` matches the step's ``"model"``, when it has one). A step holds any of:
``status`` (with ``retry_after`` and ``body``), ``delay``, ``chunk_delay`` (seconds
between stream chunks), ``cut_after_chunks``, ``garbage``, ``reply`` and ``usage`` (fields
merged into the answer's usage: ``{"cost": 0.01}`` as a proxy that states its cost sends
it, ``{"prompt_tokens_details": {"cached_tokens": 8}}``). Script it
in process (:meth:`FakeOpenAI.script`) or over HTTP (``POST /_control/script``);
``GET /_control/requests`` lists what was received. The control API needs no key.

Run it standalone with ``python -m bench.fake_openai --port 8089 [--no-record]``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import math
import struct
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

from bench._fake_openai_http import Connection, LoopThread, Request, reason_phrase, run_until_signal

MODELS = ("gpt-4o-mini", "gpt-4o", "fake-model", "text-embedding-3-small")
STEP_KEYS = {"model", "status", "retry_after", "body", "delay", "chunk_delay"}
STEP_KEYS |= {"cut_after_chunks", "garbage", "reply", "usage"}
MAX_RECORDED = 1000
ECHO_CHARS = 200
GARBAGE = b"this is not json {"
SSE = "text/event-stream"

# OpenAI's own codes where it has them; otherwise the status phrase (service_unavailable).
_CODES = {400: None, 401: "invalid_api_key", 429: "rate_limit_exceeded", 500: "server_error"}
_encode = json.JSONEncoder(separators=(",", ":")).encode


def _json(obj: Any) -> bytes:
    return _encode(obj).encode()


def error_body(status: int, message: str) -> bytes:
    """An error body in OpenAI's shape: ``{"error": {message, type, param, code}}``."""
    kind = "server_error" if status >= 500 else "invalid_request_error"
    kind = "requests" if status == 429 else kind
    code = _CODES.get(status, reason_phrase(status).lower().replace(" ", "_"))
    return _json({"error": {"message": message, "type": kind, "param": None, "code": code}})


def _count_words(text: str) -> int:
    return len(text.split())  # the token estimate: cheap and deterministic


def _text(content: Any) -> str:
    """The text of a message's ``content``: a string, or a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _embedding(item: Any) -> tuple[float, ...]:
    """A deterministic unit vector of 8 float32 values from a hash of the input."""
    key = item if isinstance(item, str) else _encode(item)
    raw = struct.unpack("<8I", hashlib.blake2b(key.encode(), digest_size=32).digest())
    vec = [v / 2**31 - 1.0 for v in raw]
    norm = math.sqrt(sum(v * v for v in vec)) or 1.0
    # Rounded to float32 so the float and base64 encodings give the same numbers.
    return struct.unpack("<8f", struct.pack("<8f", *(v / norm for v in vec)))


class FakeOpenAI:
    """The fake server, run on the current event loop.

    Args:
        host: Address to bind.
        port: Port to bind; 0 picks a free one (read :attr:`port` after :meth:`start`).
        record: Keep the last 1000 requests for :attr:`requests` (the benchmark turns
            this off so recording costs nothing).
        api_key: When set, requests without ``Authorization: Bearer <api_key>`` get a 401.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        record: bool = True,
        api_key: str | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.record = record
        self.api_key = api_key
        self._auth = None if api_key is None else f"Bearer {api_key}"
        self.connections_opened = 0  # lets tests check that clients keep connections alive
        self._steps: list[dict[str, Any]] = []
        self._requests: deque[dict[str, Any]] = deque(maxlen=MAX_RECORDED)
        self._conns: set[Connection] = set()
        self._server: asyncio.Server | None = None
        self._counter = 0

    # --- lifecycle and in-process control ---------------------------------------------

    async def start(self) -> None:
        """Bind and start serving; :attr:`port` is the real port afterwards."""
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._connection, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Stop listening, drop every open connection and cancel requests in progress."""
        if self._server is None:
            return
        self._server.close()
        tasks = [t for c in list(self._conns) if (t := c.shutdown()) is not None]
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._server.wait_closed()
        self._server = None

    @property
    def base_url(self) -> str:
        """The OpenAI ``base_url`` of this server, e.g. ``http://127.0.0.1:8089/v1``."""
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}/v1"

    def script(self, *steps: dict[str, Any]) -> None:
        """Append fault steps, consumed in order by the next matching chat requests.

        Raises:
            ValueError: A step is not a dict or has an unknown key (catches typos early).
        """
        for step in steps:
            if not isinstance(step, dict) or not step.keys() <= STEP_KEYS:
                raise ValueError(f"bad script step {step!r}; keys are {sorted(STEP_KEYS)}")
        self._steps.extend(dict(s) for s in steps)

    def clear_script(self) -> None:
        """Drop the steps not consumed yet."""
        self._steps.clear()

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The recorded requests, oldest first: ``method``, ``path``, ``headers``, ``body``."""
        return list(self._requests)

    def clear_requests(self) -> None:
        """Forget the recorded requests."""
        self._requests.clear()

    def _take_step(self, model: Any) -> dict[str, Any]:
        for i, step in enumerate(self._steps):
            if step.get("model") in (None, model):
                return self._steps.pop(i)
        return {}

    # --- routing ------------------------------------------------------------------

    def _connection(self) -> Connection:
        self.connections_opened += 1
        return Connection(self._handle, self._conns)

    def _handle(self, req: Request, conn: Connection) -> Coroutine[Any, Any, None] | None:
        try:
            body = json.loads(req.body) if req.body else None
        except ValueError:
            body = ...  # Ellipsis marks a body that is not JSON (None means no body)
        if req.path.startswith("/_control/"):
            return self._control(req, body, conn)
        if self.record:
            rec_body = req.body.decode("utf-8", "replace") if body is ... else body
            self._requests.append(
                {"method": req.method, "path": req.path, "headers": req.headers, "body": rec_body}
            )
        if self._auth is not None and req.headers.get("authorization") != self._auth:
            return conn.respond(401, error_body(401, "Incorrect API key provided."))
        path = req.path.removeprefix("/v1")
        if path in ("/chat/completions", "/embeddings"):
            if req.method != "POST":
                return conn.respond(405, error_body(405, f"use POST for {req.path}"))
            if not isinstance(body, dict):
                return conn.respond(400, error_body(400, "the body must be a JSON object"))
            if path == "/embeddings":
                return self._embeddings(body, conn)
            return self._chat(body, conn)
        if path == "/models" and req.method == "GET":
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in MODELS]
            return conn.respond(200, _json({"object": "list", "data": data}))
        return conn.respond(404, error_body(404, f"no route {req.method} {req.path}"))

    def _control(self, req: Request, body: Any, conn: Connection) -> None:
        route = (req.method, req.path)
        if route == ("POST", "/_control/script"):
            steps = body.get("steps") if isinstance(body, dict) else None
            try:
                self.script(*(steps if isinstance(steps, list) else [None]))
            except ValueError as exc:
                return conn.respond(400, error_body(400, str(exc)))
            return conn.respond(200, _json({"queued": len(self._steps)}))
        if route == ("GET", "/_control/script"):
            return conn.respond(200, _json({"steps": self._steps}))
        if route == ("DELETE", "/_control/script"):
            self.clear_script()
        elif route == ("GET", "/_control/requests"):
            return conn.respond(200, _json({"requests": list(self._requests)}))
        elif route == ("DELETE", "/_control/requests"):
            self.clear_requests()
        else:
            return conn.respond(404, error_body(404, f"no route {req.method} {req.path}"))
        conn.respond(200, b"{}")

    # --- chat completions -----------------------------------------------------------

    def _chat(self, body: dict[str, Any], conn: Connection) -> Coroutine[Any, Any, None] | None:
        if not isinstance(body.get("messages"), list):
            return conn.respond(400, error_body(400, "'messages' is required"))
        step = self._take_step(body.get("model"))
        if step.get("delay") or step.get("chunk_delay"):
            return self._chat_later(body, step, conn)  # only waiting costs a task
        self._chat_now(body, step, conn)
        return None

    async def _chat_later(
        self, body: dict[str, Any], step: dict[str, Any], conn: Connection
    ) -> None:
        await asyncio.sleep(step.get("delay") or 0)
        if conn.closed:
            return  # the client gave up (e.g. its timeout); nothing to answer
        pace = step.get("chunk_delay")
        plain = step.get("garbage") or step.get("status", 200) != 200
        if not pace or not body.get("stream") or plain:
            return self._chat_now(body, step, conn)
        events = self._stream_events(body, step)
        cut = step.get("cut_after_chunks")
        limit = len(events) if cut is None else cut
        conn.start_chunked(200, SSE, events[: min(1, limit)])
        for event in events[1:limit]:
            await asyncio.sleep(pace)
            await conn.drain()
            conn.write_chunk(event)
        conn.drop() if cut is not None else conn.end_chunked()

    def _chat_now(self, body: dict[str, Any], step: dict[str, Any], conn: Connection) -> None:
        status = step.get("status", 200)
        if status != 200:
            extra = []
            if "retry_after" in step:
                extra.append(("retry-after", _seconds(step["retry_after"])))
            custom = step.get("body")
            if custom is None:
                payload = error_body(status, f"injected HTTP {status} from the fake server")
            else:
                payload = custom.encode() if isinstance(custom, str) else _json(custom)
            return conn.respond(status, payload, headers=extra)
        stream = bool(body.get("stream"))
        cut = step.get("cut_after_chunks")
        if cut is not None and not stream:
            return conn.drop()
        if step.get("garbage"):
            if stream:
                conn.start_chunked(200, SSE, [b"data: not-json\n\n", b"data: [DONE]\n\n"])
                return conn.end_chunked()
            return conn.respond(200, GARBAGE)
        if stream:
            events = self._stream_events(body, step)
            conn.start_chunked(200, SSE, events if cut is None else events[:cut])
            return conn.drop() if cut is not None else conn.end_chunked()
        return conn.respond(200, _json(self._completion(body, step)))

    def _answer(self, body: dict[str, Any], step: dict[str, Any]) -> tuple[str | None, str | None]:
        """``(text, tool_name)``: what to reply, exactly one of the two set."""
        messages = body["messages"]
        last = messages[-1] if messages and isinstance(messages[-1], dict) else {}
        if "reply" in step:
            return str(step["reply"]), None
        tools, choice = body.get("tools"), body.get("tool_choice")
        if tools and last.get("role") == "user" and choice != "none":
            # tool_choice may name the function: {"type": "function", "function": {...}}
            named = choice if isinstance(choice, dict) else tools[0]
            return None, named.get("function", {}).get("name", "tool")
        users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
        echo = _text(users[-1].get("content"))[:ECHO_CHARS] if users else ""
        fmt = body.get("response_format")
        if isinstance(fmt, dict) and fmt.get("type") in ("json_object", "json_schema"):
            return _encode({"ok": True, "echo": echo}), None
        if last.get("role") == "tool":
            return "tool said: " + _text(last.get("content")), None
        return "ok: " + echo, None

    def _bounded(
        self, body: dict[str, Any], step: dict[str, Any]
    ) -> tuple[str | None, str | None, str]:
        """``(text, tool_name, finish_reason)``: the answer cut to ``max_tokens`` words
        (``max_completion_tokens``), with ``"length"`` as its finish reason when it was."""
        text, tool = self._answer(body, step)
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if text is not None and isinstance(limit, int) and _count_words(text) > limit:
            return " ".join(text.split()[: max(1, limit)]), None, "length"
        return text, tool, "stop" if tool is None else "tool_calls"

    def _usage(self, body: dict[str, Any], text: str | None, n: int) -> dict[str, int]:
        messages = [m for m in body["messages"] if isinstance(m, dict)]
        prompt = sum(_count_words(_text(m.get("content"))) + 1 for m in messages)
        completion = n * (max(1, _count_words(text)) if text is not None else 5)
        total = prompt + completion
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}

    def _next_id(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def _completion(self, body: dict[str, Any], step: dict[str, Any]) -> dict[str, Any]:
        text, tool, finish = self._bounded(body, step)
        n = _n(body)
        choices = []
        for i in range(n):
            message: dict[str, Any] = {"role": "assistant", "content": text}
            if tool is not None:
                call = {"id": self._next_id("call_"), "type": "function"}
                message["tool_calls"] = [{**call, "function": {"name": tool, "arguments": "{}"}}]
            choices.append({"index": i, "message": message, "finish_reason": finish})
            choices[-1]["logprobs"] = None
        return {
            "id": self._next_id("chatcmpl-fake"),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "system_fingerprint": None,
            "choices": choices,
            "usage": {**self._usage(body, text, n), **(step.get("usage") or {})},
        }

    def _stream_events(self, body: dict[str, Any], step: dict[str, Any]) -> list[bytes]:
        """Every SSE event of a streamed answer, ``data: [DONE]`` included.

        Each choice gets 5 chunks: the role, three deltas (content thirds, or a tool
        call's header and arguments) and the finish reason; then the usage chunk
        when asked for. ``cut_after_chunks`` counts these events.
        """
        text, tool, finish = self._bounded(body, step)
        n = _n(body)
        options = body.get("stream_options")
        with_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        base: dict[str, Any] = {
            "id": self._next_id("chatcmpl-fake"),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body.get("model"),
            "system_fingerprint": None,
        }
        if with_usage:
            base["usage"] = None  # as OpenAI does: null on every chunk but the last
        per_choice = [self._deltas(text, tool) for _ in range(n)]
        events = []
        for stage in range(5):
            for i, deltas in enumerate(per_choice):
                choice = {"index": i, "delta": deltas[stage], "logprobs": None}
                choice["finish_reason"] = finish if stage == 4 else None
                events.append(b"data: " + _json({**base, "choices": [choice]}) + b"\n\n")
        if with_usage:
            counted = {**self._usage(body, text, n), **(step.get("usage") or {})}
            usage = {**base, "choices": [], "usage": counted}
            events.append(b"data: " + _json(usage) + b"\n\n")
        events.append(b"data: [DONE]\n\n")
        return events

    def _deltas(self, text: str | None, tool: str | None) -> list[dict[str, Any]]:
        """The five deltas of one streamed choice, the last one empty (it carries the finish)."""
        if tool is None:
            assert text is not None
            a, b = len(text) // 3, 2 * len(text) // 3
            role = {"role": "assistant", "content": ""}
            return [role, {"content": text[:a]}, {"content": text[a:b]}, {"content": text[b:]}, {}]
        call = {"index": 0, "id": self._next_id("call_"), "type": "function"}
        call["function"] = {"name": tool, "arguments": ""}
        # The arguments come in two pieces, as a real stream sends them, so clients must join.
        args = [{"tool_calls": [{"index": 0, "function": {"arguments": p}}]} for p in "{}"]
        return [{"role": "assistant", "content": None}, {"tool_calls": [call]}, *args, {}]

    # --- embeddings -----------------------------------------------------------------

    def _embeddings(self, body: dict[str, Any], conn: Connection) -> None:
        given = body.get("input")
        if not given or not isinstance(given, str | list):
            return conn.respond(400, error_body(400, "'input' must be a string or a list"))
        # One string or one list of token ids is a single input; else a list of them.
        single = isinstance(given, str) or all(isinstance(x, int) for x in given)
        inputs = [given] if single else given
        as_base64 = body.get("encoding_format") == "base64"
        data = []
        for i, item in enumerate(inputs):
            vec = _embedding(item)
            value: Any = base64.b64encode(struct.pack("<8f", *vec)).decode() if as_base64 else vec
            data.append({"object": "embedding", "index": i, "embedding": value})
        tokens = sum(max(1, _count_words(x)) if isinstance(x, str) else len(x) for x in inputs)
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        reply = {"object": "list", "data": data, "model": body.get("model"), "usage": usage}
        conn.respond(200, _json(reply))


def _n(body: dict[str, Any]) -> int:
    n = body.get("n")
    return n if isinstance(n, int) and n > 0 else 1


def _seconds(value: Any) -> str:
    """A ``Retry-After`` value: whole seconds without a decimal point, others as given."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


class FakeOpenAIThread(LoopThread):
    """A :class:`FakeOpenAI` on its own thread and event loop, for synchronous tests.

    Use it as a context manager. Control calls run on the server's loop, so a step
    scripted here applies to the very next request the test sends. Arguments are
    :class:`FakeOpenAI`'s.
    """

    server: FakeOpenAI

    def __init__(self, host: str = "127.0.0.1", port: int = 0, **options: Any) -> None:
        super().__init__(FakeOpenAI(host, port, **options))

    @property
    def base_url(self) -> str:
        """See :attr:`FakeOpenAI.base_url`."""
        return self.server.base_url

    def script(self, *steps: dict[str, Any]) -> None:
        """See :meth:`FakeOpenAI.script`."""
        self.call(self.server.script, *steps)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """See :attr:`FakeOpenAI.requests`."""
        return self.call(lambda: self.server.requests)

    def clear_requests(self) -> None:
        """See :meth:`FakeOpenAI.clear_requests`."""
        self.call(self.server.clear_requests)

    def clear_script(self) -> None:
        """See :meth:`FakeOpenAI.clear_script`."""
        self.call(self.server.clear_script)


def main(argv: list[str] | None = None) -> None:
    """Serve until SIGTERM or SIGINT; prints ``listening on <base_url>`` once ready."""
    parser = argparse.ArgumentParser(prog="python -m bench.fake_openai", description=__doc__)
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--no-record", action="store_true", help="keep no requests (benchmarks)")
    parser.add_argument("--api-key", default=None, help="reject other keys with a 401")
    parser.add_argument("--no-uvloop", action="store_true", help="plain asyncio, even with uvloop")
    args = parser.parse_args(argv)
    server = FakeOpenAI(args.host, args.port, record=not args.no_record, api_key=args.api_key)
    run_until_signal(server, use_uvloop=not args.no_uvloop)


if __name__ == "__main__":
    main()
