"""A lean HTTP/1.1 client on ``asyncio.open_connection``, for load generation.

It does only what ``bench.server`` needs, at a small fraction of httpx's CPU
cost per request, so the load generator leaves the server its core:

- one keep-alive connection per :class:`Connection`, one request at a time;
- request bodies with ``Content-Length``; response bodies by ``Content-Length``,
  ``Transfer-Encoding: chunked`` or read until the server closes;
- server-sent events read as they arrive, each stamped with the wall-clock time
  (``time.time()``) of the read that completed it. The ``data`` is kept as
  bytes: parse it after the timed part, when you need it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

MAX_HEAD = 64 * 1024


class HttpError(Exception):
    """The server answered something this client cannot read, or closed early."""


@dataclass(slots=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(slots=True)
class SseEvent:
    """One server-sent event: ``event`` type, ``id`` (or None), raw ``data`` and receive time."""

    event: str
    id: str | None
    data: bytes
    received: float  # time.time() when the block was complete
    received_perf: float = field(default=0.0)  # time.perf_counter() at the same moment


def parse_block(block: bytes) -> tuple[str | None, str | None, bytes]:
    """``(event, id, data)`` of one SSE block; ``event`` is None for comments and ``retry:``."""
    event = ident = None
    data: list[bytes] = []
    for line in block.split(b"\n"):
        if not line or line.startswith(b":"):
            continue
        name, _, value = line.partition(b":")
        if value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            data.append(value)
        elif name == b"event":
            event = value.decode()
        elif name == b"id":
            ident = value.decode()
    return event, ident, b"\n".join(data)


class Connection:
    """One keep-alive HTTP/1.1 connection to ``host:port``; reconnects when the server closed it."""

    def __init__(self, host: str, port: int, headers: dict[str, str] | None = None):
        self.host, self.port = host, port
        self._head = "".join(
            f"{k}: {v}\r\n" for k, v in {"Host": f"{host}:{port}", **(headers or {})}.items()
        )
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def _ensure(self) -> asyncio.StreamReader:
        if self._reader is None or self._reader.at_eof():
            await self.close()
            self._reader, self._writer = await asyncio.open_connection(self.host, self.port)
        return self._reader

    async def close(self) -> None:
        writer, self._reader, self._writer = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass

    async def _send(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str] | None
    ) -> None:
        reader = await self._ensure()
        assert self._writer is not None and reader is not None
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        length = f"Content-Length: {len(body)}\r\n" if body is not None else ""
        self._writer.write(
            f"{method} {path} HTTP/1.1\r\n{self._head}{extra}{length}\r\n".encode() + (body or b"")
        )

    async def _read_head(self) -> tuple[int, dict[str, str]]:
        assert self._reader is not None
        try:
            raw = await self._reader.readuntil(b"\r\n\r\n")
        except asyncio.IncompleteReadError as exc:
            await self.close()
            raise HttpError("the server closed the connection before answering") from exc
        except asyncio.LimitOverrunError as exc:
            await self.close()
            raise HttpError("response head too long") from exc
        lines = raw.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            await self.close()
            raise HttpError(f"not an HTTP/1.x status line: {lines[0]!r}")
        headers = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        return int(parts[1]), headers

    async def _body_chunks(self, status: int, headers: dict[str, str]) -> AsyncIterator[bytes]:
        """The body as it arrives; closes the connection after a close-delimited body."""
        reader = self._reader
        assert reader is not None
        if status in (204, 304) or 100 <= status < 200:
            return
        if headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int((await reader.readuntil(b"\r\n")).split(b";", 1)[0], 16)
                if size == 0:
                    while (await reader.readuntil(b"\r\n")) != b"\r\n":
                        pass  # trailers
                    break
                chunk = await reader.readexactly(size + 2)
                yield chunk[:-2]
        elif "content-length" in headers:
            length = int(headers["content-length"])
            if length:
                yield await reader.readexactly(length)
        else:
            while chunk := await reader.read(65536):
                yield chunk
            await self.close()
            return
        if headers.get("connection", "").lower() == "close":
            await self.close()

    async def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        """Send one request (a dict/list ``body`` goes as JSON) and read the whole response."""
        raw: bytes | None = None
        if body is not None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode()
            headers = {"Content-Type": "application/json", **(headers or {})}
        try:
            await self._send(method, path, raw, headers)
            status, head = await self._read_head()
            parts = [c async for c in self._body_chunks(status, head)]
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            await self.close()
            raise HttpError(f"{method} {path}: {exc!r}") from exc
        return Response(status, head, b"".join(parts))

    async def events(
        self, path: str, headers: dict[str, str] | None = None
    ) -> AsyncIterator[SseEvent]:
        """GET ``path`` as server-sent events; yields each event (comments and ``retry:`` skipped).

        Raises :class:`HttpError` for a status other than 200 or 204 (204 yields
        nothing) and when the connection breaks mid-stream.
        """
        hdrs = {"Accept": "text/event-stream", **(headers or {})}
        complete = False
        try:
            await self._send("GET", path, None, hdrs)
            status, head = await self._read_head()
            if status not in (200, 204):
                body = b"".join([c async for c in self._body_chunks(status, head)])
                raise HttpError(f"GET {path}: HTTP {status}: {body[:300]!r}")
            buffer = b""
            async for chunk in self._body_chunks(status, head):
                buffer += chunk
                if b"\n\n" not in buffer:
                    continue
                now, now_perf = time.time(), time.perf_counter()
                *blocks, buffer = buffer.replace(b"\r\n", b"\n").split(b"\n\n")
                for block in blocks:
                    event, ident, data = parse_block(block)
                    if event is not None:
                        yield SseEvent(event, ident, data, now, now_perf)
            complete = True
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            raise HttpError(f"GET {path}: {exc!r}") from exc
        finally:
            if not complete:  # an error, or the caller stopped reading mid-response
                await self.close()
