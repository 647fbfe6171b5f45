"""A loopback TCP proxy whose connections a test can cut all at once.

The browser talks to the server through it, so a test can play a network failure:
:meth:`CuttableProxy.cut` resets every open connection (the page's event stream and its
keep-alive fetch connections alike) and, for ``refuse_for`` seconds, refuses new ones.
It runs its own asyncio loop on a thread, so it works under sync Playwright.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
import threading


class CuttableProxy:
    """Forward ``127.0.0.1:port`` to ``target_port`` until :meth:`close`."""

    def __init__(self, target_port: int, target_host: str = "127.0.0.1"):
        self.target = (target_host, target_port)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port: int = s.getsockname()[1]
        self.accepted = 0  # connections taken, over the proxy's life
        self.cut_connections = 0  # connections reset by cut()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._open: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._handlers: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> CuttableProxy:
        self._thread.start()
        self._call(self._listen())
        return self

    def cut(self, refuse_for: float = 0.0) -> int:
        """Reset every open connection; refuse new ones for ``refuse_for`` seconds.

        Returns how many connections were cut.
        """
        return self._call(self._cut(refuse_for))

    @property
    def open_connections(self) -> int:
        return len(self._open)

    def close(self) -> None:
        if not self._thread.is_alive():
            return
        self._call(self._shutdown())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def _call(self, coro):  # noqa: ANN001, ANN202 - a coroutine, its result
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _listen(self) -> None:
        self._server = await asyncio.start_server(
            self._handle, "127.0.0.1", self.port, reuse_address=True
        )

    async def _cut(self, refuse_for: float, listen_again: bool = True) -> int:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        pairs = list(self._open)
        self._open.clear()
        for client, upstream in pairs:
            _reset(client)
            _reset(upstream)
        self.cut_connections += len(pairs)
        if listen_again:
            if refuse_for > 0:
                self._loop.call_later(refuse_for, lambda: self._loop.create_task(self._listen()))
            else:
                await self._listen()
        return len(pairs)

    async def _shutdown(self) -> None:
        """Cut everything, then let the connections' tasks see it and end (cancelling them
        would make asyncio's stream callbacks log errors)."""
        await self._cut(0.0, listen_again=False)
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=5)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        handler.add_done_callback(self._handlers.discard)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(writer)
            return
        pair = (writer, up_writer)
        self._open.add(pair)
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            self._open.discard(pair)
            for w in pair:
                w.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy until end of file (passed on as a half close) or until either side fails."""
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (OSError, RuntimeError):
        _reset(writer)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close at once with a TCP reset, as a dropped network looks to the other side."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()
