"""The browser tests' own harness: the cuttable proxy, and failing when Chromium is missing."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.dashboard import conftest
from tests.dashboard._proxy import CuttableProxy


@pytest.fixture
def echo_port() -> Iterator[int]:
    """A loopback echo server on a free port."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the proxy's cut resets it
            while data := conn.recv(4096):
                conn.sendall(data)

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    listener.close()


def _connect(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


def test_forwards_then_cuts_every_connection_and_refuses_for_a_while(echo_port: int) -> None:
    proxy = CuttableProxy(echo_port).start()
    try:
        clients = [_connect(proxy.port) for _ in range(3)]
        for i, c in enumerate(clients):
            c.sendall(b"ping %d" % i)
            assert c.recv(100) == b"ping %d" % i
        assert proxy.open_connections == 3

        assert proxy.cut(refuse_for=0.5) == 3
        for c in clients:
            # A reset (or an end of file) where the stream was: the page sees its network drop.
            try:
                assert c.recv(100) == b""
            except ConnectionResetError:
                pass
            c.close()
        with pytest.raises(ConnectionRefusedError):
            _connect(proxy.port)

        deadline = time.monotonic() + 5
        while True:  # listening again once the refusal is over
            try:
                again = _connect(proxy.port)
                break
            except ConnectionRefusedError:
                assert time.monotonic() < deadline, "the proxy did not listen again"
                time.sleep(0.05)
        with again:
            again.sendall(b"back")
            assert again.recv(100) == b"back"
        assert proxy.cut_connections == 3
    finally:
        proxy.close()


def test_a_cut_without_refusal_keeps_accepting(echo_port: int) -> None:
    proxy = CuttableProxy(echo_port).start()
    try:
        with _connect(proxy.port) as c:
            c.sendall(b"x")
            assert c.recv(10) == b"x"
            assert proxy.cut() == 1
        with _connect(proxy.port) as c:
            c.sendall(b"y")
            assert c.recv(10) == b"y"
    finally:
        proxy.close()


def test_a_missing_browser_skips_locally_and_fails_in_ci(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CREWCHIEF_REQUIRE_BROWSER", raising=False)
    with pytest.raises(pytest.skip.Exception, match="chromium is missing"):
        conftest._unavailable("chromium is missing")
    monkeypatch.setenv("CREWCHIEF_REQUIRE_BROWSER", "1")
    with pytest.raises(pytest.fail.Exception, match="chromium is missing.*must run"):
        conftest._unavailable("chromium is missing")
