"""Run and supervise one ``llama-server`` per local model file.

The server listens on a free loopback port and speaks the OpenAI chat API, so
crewchief talks to it exactly like any other OpenAI-compatible server. The
supervisor starts it on first use, waits for ``/health``, restarts it when it
has crashed (with a bound on crash loops), and stops it when crewchief closes
or exits. On Linux the server also gets ``PR_SET_PDEATHSIG``, so it dies with
its parent even after a SIGKILL; it is spawned from one long-lived thread
because that signal follows the thread that forked.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import ctypes
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from crewchief.errors import LocalModelError

log = logging.getLogger(__name__)

_MAX_CRASHES = 3
_CRASH_WINDOW = 300.0


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """How to run llama-server for one model."""

    binary: Path
    model_path: Path
    alias: str
    context_size: int = 16384
    parallel: int = 2
    threads: int | None = None
    startup_timeout: float = 180.0
    log_path: Path | None = None
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def command(self, port: int) -> list[str]:
        threads = self.threads or os.cpu_count() or 2
        return [
            str(self.binary),
            "--model", str(self.model_path),
            "--alias", self.alias,
            "--host", "127.0.0.1",
            "--port", str(port),
            "--ctx-size", str(self.context_size),
            "--parallel", str(self.parallel),
            "--threads", str(threads),
            "--jinja",
            "--no-webui",
            *self.extra_args,
        ]  # fmt: skip


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Like the server itself: connections in TIME_WAIT do not make the port busy.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class _Spawner:
    """One daemon thread that forks every server (PDEATHSIG follows the forking thread)."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], subprocess.Popen], concurrent.futures.Future]]
        self._jobs = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def spawn(self, make: Callable[[], subprocess.Popen]) -> subprocess.Popen:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._run, name="crewchief-llama-spawner", daemon=True
                )
                self._thread.start()
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((make, future))
        return future.result()

    def _run(self) -> None:
        while True:
            make, future = self._jobs.get()
            try:
                future.set_result(make())
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                future.set_exception(exc)


_spawner = _Spawner()


class LlamaServer:
    """One supervised llama-server. Thread-safe; :meth:`ensure_running` is cheap when up."""

    def __init__(self, options: ServerOptions):
        self.options = options
        self.port: int | None = None
        self.restarts = 0
        self._proc: subprocess.Popen | None = None
        self._crashes: deque[float] = deque(maxlen=_MAX_CRASHES)
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        if self.port is None:
            raise LocalModelError("the local model server has not been started")
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def ensure_running(self) -> str:
        """Start the server, or restart it after a crash; return its ``/v1`` base URL.

        Raises:
            LocalModelError: it does not come up in time, or keeps crashing
                (the message has the last lines of its log).
        """
        with self._lock:
            if self.running():
                return self.base_url
            if self._proc is not None:
                code = self._proc.returncode
                now = time.monotonic()
                self._crashes.append(now)
                if len(self._crashes) == _MAX_CRASHES and now - self._crashes[0] < _CRASH_WINDOW:
                    raise LocalModelError(
                        f"llama-server for {self.options.alias} crashed {_MAX_CRASHES} times in "
                        f"{_CRASH_WINDOW:.0f}s (last exit code {code}); not restarting.\n"
                        + self._log_tail()
                    )
                self.restarts += 1
                log.warning("llama-server for %s exited (%s); restarting", self.options.alias, code)
            self._start()
            return self.base_url

    def _start(self) -> None:
        port = self.port if self.port is not None and _port_free(self.port) else _free_port()
        cmd = self.options.command(port)
        log_path = self.options.log_path
        if log_path is not None:
            log_path.parent.mkdir(parents=True, exist_ok=True)
        sink = log_path.open("ab") if log_path is not None else subprocess.DEVNULL

        def make() -> subprocess.Popen:
            return subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=sink,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )

        try:
            self._proc = _spawner.spawn(make)
        except OSError as exc:
            raise LocalModelError(f"could not start {self.options.binary}: {exc}") from None
        finally:
            if sink is not subprocess.DEVNULL:
                sink.close()
        self.port = port
        _live.add(self)
        self._wait_healthy()

    def _wait_healthy(self) -> None:
        assert self._proc is not None
        deadline = time.monotonic() + self.options.startup_timeout
        url = f"http://127.0.0.1:{self.port}/health"
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise LocalModelError(
                    f"llama-server for {self.options.alias} exited with code "
                    f"{self._proc.returncode} while starting.\n" + self._log_tail()
                )
            try:
                with urllib.request.urlopen(url, timeout=2) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        self.stop()
        raise LocalModelError(
            f"llama-server for {self.options.alias} was not healthy after "
            f"{self.options.startup_timeout:g}s; stopped it.\n" + self._log_tail()
        )

    def _log_tail(self, lines: int = 12) -> str:
        path = self.options.log_path
        if path is None or not path.exists():
            return "(no server log)"
        tail = path.read_text(errors="replace").splitlines()[-lines:]
        return f"last lines of {path}:\n" + "\n".join(tail)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server (SIGTERM, then SIGKILL after ``timeout``). Idempotent."""
        with self._lock:
            proc, self._proc = self._proc, None
            self._crashes.clear()
        _live.discard(self)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_live: set[LlamaServer] = set()
_pool: dict[ServerOptions, tuple[LlamaServer, int]] = {}
_pool_lock = threading.Lock()


def acquire_server(options: ServerOptions) -> LlamaServer:
    """The process-wide server for these options (shared by every registry that asks)."""
    with _pool_lock:
        server, refs = _pool.get(options, (None, 0))
        if server is None:
            server = LlamaServer(options)
        _pool[options] = (server, refs + 1)
        return server


def release_server(server: LlamaServer) -> None:
    """Drop one reference; the last one stops the server."""
    with _pool_lock:
        entry = _pool.get(server.options)
        if entry is None or entry[0] is not server:
            return
        if entry[1] > 1:
            _pool[server.options] = (server, entry[1] - 1)
            return
        del _pool[server.options]
    server.stop()


def stop_all(servers: Sequence[LlamaServer] | None = None) -> None:
    for server in list(servers if servers is not None else _live):
        server.stop()


atexit.register(stop_all)
