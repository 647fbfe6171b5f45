"""Minimal HTTP/1.1 server plumbing for :mod:`bench.fake_openai`.

An :class:`asyncio.Protocol` per connection, ``httptools`` for parsing, keep-alive,
and no framework: the fake upstream has to stay far cheaper than the gateway it
is measured against. It does only what an OpenAI client needs:

- requests with ``Content-Length`` or chunked bodies (httptools decodes both);
- responses with ``Content-Length`` or ``Transfer-Encoding: chunked`` (streams);
- requests on one connection answered strictly in order (pipelined requests wait).

A handler is a plain function ``handler(request, conn)``. It answers at once and
returns ``None`` (the fast path: no task is created), or returns a coroutine that
the connection runs as a task when it needs to wait (delays, paced streams).
:class:`LoopThread` runs such a server on a thread of its own, for synchronous tests,
and :func:`run_until_signal` as a process of its own.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections import deque
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any, Self

import httptools

log = logging.getLogger(__name__)

Handler = Callable[["Request", "Connection"], Coroutine[Any, Any, None] | None]


@dataclass(slots=True)
class Request:
    """One parsed request. Header names are lowercased; the query string is dropped."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    keep_alive: bool


def reason_phrase(status: int) -> str:
    """The reason phrase of an HTTP status (``Service Unavailable``)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def _head(status: int, headers: list[tuple[str, str]], keep_alive: bool) -> bytes:
    lines = [b"HTTP/1.1 %d %s" % (status, reason_phrase(status).encode())]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in headers]
    if not keep_alive:
        lines.append(b"connection: close")
    return b"\r\n".join(lines) + b"\r\n\r\n"


class Connection(asyncio.Protocol):
    """One client connection: parses requests and writes the handler's responses."""

    def __init__(self, handler: Handler, registry: set[Connection]) -> None:
        self._handler = handler
        self._registry = registry
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._pending: deque[Request] = deque()
        self._task: asyncio.Task[None] | None = None
        self._keep_alive = True
        self._responded = False  # the current request's response is complete (or dropped)
        self._closed = False
        self._writable: asyncio.Future[None] | None = None  # set while the transport is paused
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []

    # --- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport  # type: ignore[assignment]  # uvloop's is no asyncio.Transport
        self._registry.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        self._registry.discard(self)
        if self._task is not None:
            self._task.cancel()  # nobody is left to read what it would write
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)

    def data_received(self, data: bytes) -> None:
        if self._closed:
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.drop()
        except httptools.HttpParserError:
            self._keep_alive = False
            self.respond(400, b'{"error": {"message": "bad request"}}')
            self.drop()  # the parser cannot resync after an error

    def pause_writing(self) -> None:
        self._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None

    # --- httptools callbacks ------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._headers = {}
        self._body = []

    def on_url(self, url: bytes) -> None:
        self._url += url  # may arrive in pieces across reads

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_body(self, body: bytes) -> None:
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = Request(
            method=self._parser.get_method().decode("ascii"),
            path=self._url.split(b"?", 1)[0].decode("utf-8", "replace"),
            headers=self._headers,
            body=b"".join(self._body),
            keep_alive=self._parser.should_keep_alive(),
        )
        if self._task is not None or self._pending:
            self._pending.append(request)  # answer in order: wait for the one in progress
        else:
            self._dispatch(request)

    # --- dispatch -----------------------------------------------------------------

    def _dispatch(self, request: Request) -> None:
        while True:
            self._keep_alive = request.keep_alive
            self._responded = False
            try:
                coro = self._handler(request, self)
            except Exception:
                log.exception("fake server handler failed")
                coro = None
            if coro is not None:
                self._task = asyncio.get_running_loop().create_task(self._run(coro))
                return
            self._after_response()
            if not self._pending or self._closed:
                return
            request = self._pending.popleft()

    async def _run(self, coro: Coroutine[Any, Any, None]) -> None:
        try:
            await coro
        except Exception:
            log.exception("fake server handler failed")
        self._task = None
        self._after_response()
        if self._pending and not self._closed:
            self._dispatch(self._pending.popleft())

    def _after_response(self) -> None:
        if self._closed:
            return
        if not self._responded:
            # A handler bug must still leave the client with an answer, not a hang.
            self._keep_alive = False
            self.respond(500, b'{"error": {"message": "fake server handler failed"}}')
        if not self._keep_alive and self._transport is not None:
            self._transport.close()
            self._closed = True

    # --- writing responses ------------------------------------------------------------

    @property
    def closed(self) -> bool:
        """Whether the connection is gone (so a delayed handler can skip its work)."""
        return self._closed

    def respond(
        self,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: list[tuple[str, str]] | None = None,
    ) -> None:
        """Write a whole response with a ``Content-Length``."""
        all_headers = [("content-type", content_type), ("content-length", str(len(body)))]
        if headers:
            all_headers += headers
        self._write(_head(status, all_headers, self._keep_alive) + body)
        self._responded = True

    def start_chunked(self, status: int, content_type: str, chunks: Iterable[bytes] = ()) -> None:
        """Write the head of a ``Transfer-Encoding: chunked`` response, with its first chunks.

        One write for the whole lot: a zero-latency stream costs a single send.
        """
        head = _head(
            status,
            [("content-type", content_type), ("transfer-encoding", "chunked")],
            self._keep_alive,
        )
        self._write(head + b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks if c))

    def write_chunk(self, data: bytes) -> None:
        """Write one chunk of a chunked response (empty data would end it, so it is skipped)."""
        if data:
            self._write(b"%x\r\n%s\r\n" % (len(data), data))

    def end_chunked(self) -> None:
        """Write the terminating chunk: the response is complete."""
        self._write(b"0\r\n\r\n")
        self._responded = True

    async def drain(self) -> None:
        """Wait while the transport's write buffer is full (flow control for paced streams)."""
        if self._writable is not None:
            await self._writable

    def drop(self) -> None:
        """Close the connection without completing the response (what's written is flushed)."""
        self._responded = True
        self._closed = True
        self._pending.clear()
        if self._transport is not None:
            self._transport.close()

    def shutdown(self) -> asyncio.Task[None] | None:
        """Close at once, discarding anything buffered, and cancel the handler (server stop).

        Returns:
            The cancelled handler task, if any, for the caller to await.
        """
        self._closed = True
        if self._transport is not None:
            self._transport.abort()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
        return task

    def _write(self, data: bytes) -> None:
        if not self._closed and self._transport is not None:
            self._transport.write(data)


class LoopThread:
    """Runs a server object (``async start()``/``async stop()``) on its own thread and loop.

    For synchronous tests: :meth:`call` runs a function on the server's loop, so state
    the loop owns is never touched from two threads at once.
    """

    def __init__(self, server: Any) -> None:
        self.server = server
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread and wait until the server listens (or raise why it cannot)."""
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = self._loop = asyncio.new_event_loop()
            try:
                loop.run_until_complete(self.server.start())
            except BaseException as exc:  # handed to the starting thread, raised there
                failure.append(exc)
                ready.set()
                loop.close()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.server.stop())
            loop.close()

        self._thread = threading.Thread(target=run, name=type(self.server).__name__, daemon=True)
        self._thread.start()
        ready.wait()
        if failure:
            self._thread.join()
            raise failure[0]

    def stop(self) -> None:
        """Stop the server and join its thread."""
        if self._thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)`` run on the server's loop; returns its result."""

        async def run() -> Any:
            return fn(*args)

        assert self._loop is not None, "the server is not running"
        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=10)


def run_until_signal(server: Any, *, use_uvloop: bool = True) -> None:
    """Run ``server`` (``async start()``/``async stop()``, ``base_url``) until SIGTERM or SIGINT.

    Prints ``listening on <base_url>`` (flushed) once it listens, for whoever started
    the process to wait for.

    Args:
        server: The server object.
        use_uvloop: Run on uvloop when it is installed: each request costs less CPU,
            which leaves more of the machine to what a benchmark measures.
    """

    async def serve() -> None:
        await server.start()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        print(f"listening on {server.base_url}", flush=True)
        await stop.wait()
        await server.stop()

    loop_factory = None
    if use_uvloop:
        try:
            import uvloop

            loop_factory = uvloop.new_event_loop
        except ImportError:
            pass
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(serve())
