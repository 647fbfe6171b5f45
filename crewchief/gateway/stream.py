"""A streaming answer: the upstream's chunks passed on, its answer put together for the
conversation, and the last chunk carrying ``x_crewchief``."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from crewchief.gateway.errors import openai_error
from crewchief.gateway.request import ChatRequest
from crewchief.gateway.spend import partial_usage
from crewchief.gateway.targets import Target
from crewchief.gateway.trace import Trace, stated_cost, usage_of
from crewchief.gateway.upstream import TRANSPORT_ERRORS
from crewchief.models.types import Usage

if TYPE_CHECKING:
    from crewchief.gateway.service import Gateway

# Ledger writes of streams whose client left, until they are done (a task needs a reference).
_LEFT: set[asyncio.Task[None]] = set()


@dataclass
class _Assembled:
    """The answer of a stream's first choice, put together from its deltas."""

    content: list[str] = field(default_factory=list)
    calls: dict[int, dict[str, Any]] = field(default_factory=dict)
    finish: str | None = None

    def add(self, chunk: dict[str, Any]) -> None:
        choices = chunk.get("choices") or []
        first = choices[0] if choices and isinstance(choices[0], dict) else {}
        delta = first.get("delta") or {}
        if first.get("finish_reason"):
            self.finish = first["finish_reason"]
        if isinstance(delta.get("content"), str):
            self.content.append(delta["content"])
        for call in delta.get("tool_calls") or ():
            slot = self.calls.setdefault(
                call.get("index", 0), {"type": "function", "function": {"arguments": ""}}
            )
            slot["id"] = call.get("id") or slot.get("id")
            function = call.get("function") or {}
            if function.get("name"):
                slot["function"]["name"] = function["name"]
            slot["function"]["arguments"] += function.get("arguments") or ""

    def message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content) or None}
        if self.calls:
            message["tool_calls"] = [self.calls[i] for i in sorted(self.calls)]
        return message


@dataclass
class OpenStream:
    """A streaming answer whose upstream already said 200: the route sends its headers,
    then :meth:`chunks`."""

    gateway: Gateway
    request: ChatRequest
    trace: Trace
    target: Target
    response: aiohttp.ClientResponse
    close: Callable[[], Awaitable[None]]
    opened: float
    cache_key: str | None = None  # where the whole answer is stored when the stream ends well
    # The answer so far (what a stream cut short is charged for), and whether its ledger
    # row is written (once, however the stream ends).
    answer: _Assembled = field(default_factory=lambda: _Assembled())
    recorded: bool = False

    async def finish(self) -> None:
        """The response is over: close the upstream, and write the ledger row of a stream
        whose body never started (the client left before its first chunk)."""
        await self.close()
        if not self.recorded:
            self._left("the client left before the answer began")

    def _left(self, reason: str) -> None:
        """The ledger row of a stream the client left, by a task of its own (the stream's
        task is being cancelled), charged for what the stream used until then."""
        self.recorded = True
        ms = (time.perf_counter() - self.opened) * 1000
        row = self.gateway.ledger(self.trace, self.target, ms, reason, self._partial())
        task = asyncio.get_running_loop().create_task(row)
        _LEFT.add(task)
        task.add_done_callback(_LEFT.discard)

    def _partial(self) -> Usage:
        if self.trace.usage.input or self.trace.usage.output:
            return self.trace.usage  # the usage chunk came before the cut
        prompt, output = partial_usage(self.trace, self.request, "".join(self.answer.content))
        return Usage(prompt, output)

    async def chunks(self) -> AsyncIterator[bytes]:
        """The SSE lines for the client, the last chunk carrying ``x_crewchief``.

        A client that leaves before the end still gets its ledger row (written by a task
        of its own: the stream's task is being cancelled).
        """
        ended = False
        try:
            async for chunk in self._chunks():
                yield chunk
            ended = True
        finally:
            if not ended and not self.recorded:
                self._left("the client left first")

    async def _chunks(self) -> AsyncIterator[bytes]:
        held: dict[str, Any] | None = None  # the upstream's usage chunk
        last_id, error = "", None
        answer = self.answer
        try:
            async for line in self.response.content:
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    break
                try:
                    chunk = json.loads(data)
                except ValueError:
                    error = "the upstream sent a chunk that is not JSON"
                    break
                if not isinstance(chunk, dict):
                    error = "the upstream sent a chunk that is not a JSON object"
                    break
                if chunk.get("error"):
                    error = self.target.scrub(f"the upstream failed mid-stream: {chunk['error']}")
                    break
                last_id = chunk.get("id", last_id)
                answer.add(chunk)
                if chunk.get("usage"):
                    self.trace.usage = usage_of(chunk)
                    if (cost := stated_cost(chunk)) is not None:
                        self.trace.stated_cost = cost
                    if not chunk.get("choices"):
                        held = chunk  # sent last, with the metadata
                        continue
                yield b"data: " + data + b"\n\n"
            else:
                error = "the upstream closed the stream before its end"
        except TRANSPORT_ERRORS as exc:
            error = f"the upstream stream broke: {type(exc).__name__}: {exc}"
        finally:
            await self.close()
        ms = (time.perf_counter() - self.opened) * 1000
        if error is not None:
            self.gateway.breakers.failure(self.target.circuit)
        self.recorded = True
        partial = self._partial() if error is not None else None
        await self.gateway.ledger(self.trace, self.target, ms, error, partial)
        if error is not None:
            body = openai_error(502, error, code="upstream_stream_error")
            yield f"data: {json.dumps(body)}\n\n".encode()
            return
        message = answer.message()
        await self.gateway.remember(self.trace, message)
        if self.cache_key is not None:
            whole = self._whole(last_id, message, answer.finish, held)
            await self.gateway.store(self.cache_key, whole, self.target.spec, self.trace)
        last = held or {
            "id": last_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": self.target.model,
            "choices": [],
        }
        if not self.request.include_usage:
            last.pop("usage", None)
        last["x_crewchief"] = self.trace.metadata()
        yield f"data: {json.dumps(last)}\n\ndata: [DONE]\n\n".encode()

    def _whole(
        self,
        answer_id: str,
        message: dict[str, Any],
        finish: str | None,
        held: dict[str, Any] | None,
    ) -> dict[str, Any]:
        """The streamed answer as the ``chat.completion`` a non-streaming request gets."""
        usage = (held or {}).get("usage") or {
            "prompt_tokens": self.trace.usage.input,
            "completion_tokens": self.trace.usage.output,
            "total_tokens": self.trace.usage.input + self.trace.usage.output,
        }
        return {
            "id": answer_id,
            "object": "chat.completion",
            "created": int(time.time()),
            "model": self.target.model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish or "stop"}],
            "usage": usage,
        }


class ReplayedStream:
    """A cached answer sent as a stream: for each choice its whole message in one delta,
    then its finish reason; the usage chunk when asked for; ``x_crewchief`` last."""

    def __init__(self, answer: dict[str, Any], trace: Trace, include_usage: bool):
        self.answer, self.trace, self.include_usage = answer, trace, include_usage

    async def close(self) -> None:
        return None

    async def finish(self) -> None:
        return None

    async def chunks(self) -> AsyncIterator[bytes]:
        answer = self.answer
        base = {
            "id": answer.get("id", ""),
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": answer.get("model"),
        }
        events = []
        for choice in answer.get("choices") or []:
            message = choice.get("message") or {}
            delta: dict[str, Any] = {"role": "assistant", "content": message.get("content")}
            if message.get("tool_calls"):
                delta["tool_calls"] = [
                    dict(call, index=i) for i, call in enumerate(message["tool_calls"])
                ]
            index = choice.get("index", 0)
            events.append({**base, "choices": [{"index": index, "delta": delta}]})
            finish = {"index": index, "delta": {}, "finish_reason": choice.get("finish_reason")}
            events.append({**base, "choices": [finish]})
        last: dict[str, Any] = {**base, "choices": []}
        if self.include_usage:
            last["usage"] = answer.get("usage")
        last["x_crewchief"] = self.trace.metadata()
        events.append(last)
        yield b"".join(f"data: {json.dumps(e)}\n\n".encode() for e in events) + b"data: [DONE]\n\n"
