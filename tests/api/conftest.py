"""Fixtures for the REST API: the app over ASGI, and a real ``crewchief serve`` on loopback.

``api`` drives the real app in-process (``httpx.AsyncClient`` over ASGI) with two
API keys of different owners. ``live_server`` starts ``crewchief serve`` as a
subprocess on a free loopback port (for SSE and everything that needs real
sockets) and stops it by PID.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from crewchief.api import create_app
from crewchief.config import Settings
from crewchief.db.keys import create_key
from tests.conftest import make_settings


@dataclass
class Api:
    """An in-process app: ``client`` (no key set), and keys of owners alice and bob."""

    client: httpx.AsyncClient
    app: Any
    settings: Settings
    keys: dict[str, str]

    def auth(self, owner: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[owner]}"}


@pytest.fixture
def api_factory(tmp_path: Path) -> Callable[..., Any]:
    """``async with api_factory(**settings_overrides) as api``: a fresh app and database."""
    import contextlib
    import itertools

    counter = itertools.count()

    @contextlib.asynccontextmanager
    async def make(*, auth: bool = True, models: str = "fake:default", **overrides: Any):
        home = tmp_path / f"home-{next(counter)}"
        settings = make_settings(home, **overrides)
        settings = settings.model_copy(
            update={
                "models": {
                    a: c.model_copy(update={"model": models}) for a, c in settings.models.items()
                }
            }
        )
        app = create_app(settings, auth=auth)
        async with app.router.lifespan_context(app):
            store = app.state.chief.services.store
            keys = {}
            for owner in ("alice", "bob"):
                _, keys[owner] = await create_key(store, name=f"{owner}-key", owner=owner)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                yield Api(client, app, settings, keys)

    return make


@pytest.fixture
async def api(api_factory: Callable[..., Any]) -> AsyncIterator[Api]:
    async with api_factory() as instance:
        yield instance


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(url: str, process: subprocess.Popen, log: Path, timeout: float = 60) -> None:
    """Wait until a started ``crewchief serve`` answers ``/readyz`` (its log if it dies)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()}")
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"server did not become ready: {log.read_text()}")


def stop_processes(processes: list[subprocess.Popen], timeout: float = 20) -> None:
    """SIGTERM each process this test run started, wait, and kill what does not stop."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class LiveServer:
    """A running ``crewchief serve``: its URL, keys by owner, its home and process."""

    url: str
    keys: dict[str, str]
    home: Path
    process: subprocess.Popen
    env: dict[str, str] = field(default_factory=dict)

    def auth(self, owner: str = "alice") -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[owner]}"}

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run ``crewchief ARGS`` against the same home (e.g. ``keys revoke``)."""
        return subprocess.run(
            [sys.executable, "-m", "crewchief.cli", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=check,
            stdin=subprocess.DEVNULL,
        )


def _server_env(home: Path, env: dict[str, str]) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CREWCHIEF_")}
    base.update(
        {
            "CREWCHIEF_HOME": str(home),
            "CREWCHIEF_MODEL": "fake:default",
            "CREWCHIEF_ALLOW_MODEL_REQUESTS": "0",
            "CREWCHIEF_CONFIG": str(home / "none.toml"),
        }
    )
    base.update(env)
    return base


@pytest.fixture
def live_server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    """``live_server_factory(env={...}, args=[...])`` starts a server; all are stopped at the end.

    ``env`` sets ``CREWCHIEF_*`` variables (``CREWCHIEF_API_HEARTBEAT``,
    ``CREWCHIEF_API_RATE_LIMIT``, ``CREWCHIEF_MODEL``...); ``args`` are extra
    ``serve`` arguments (``--no-auth``, ``--workspace-root DIR``).
    """
    yield from _server_factory(tmp_path)


@pytest.fixture(scope="module")
def module_server_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., LiveServer]]:
    """Like ``live_server_factory``, but its servers serve every test of the module.

    For modules whose tests can share a server (each starts its own operations):
    a server start costs a few seconds.
    """
    yield from _server_factory(tmp_path_factory.mktemp("servers"))


def _server_factory(tmp_path: Path) -> Iterator[Callable[..., LiveServer]]:
    started: list[subprocess.Popen] = []

    def start(
        env: dict[str, str] | None = None,
        args: list[str] | None = None,
        like: LiveServer | None = None,
    ) -> LiveServer:
        """``like``: another instance of that server (its home, settings and keys)."""
        home = like.home if like else tmp_path / f"server-{len(started)}"
        if like is None:
            home.mkdir()
            (home / "none.toml").write_text("")
        full_env = like.env if like else _server_env(home, env or {})
        keys = dict(like.keys) if like else {}
        if like is None and "--no-auth" not in (args or []):
            for owner in ("alice", "bob"):
                out = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "crewchief.cli",
                        "keys",
                        "create",
                        "--owner",
                        owner,
                        "--name",
                        f"{owner}-key",
                        "--json",
                    ],
                    env=full_env,
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=True,
                    stdin=subprocess.DEVNULL,
                )
                keys[owner] = json.loads(out.stdout)["key"]
        port = free_port()
        log_path = home / (f"server-{port}.log" if like else "server.log")
        log = open(log_path, "w")  # noqa: SIM115 - closed with the process
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "crewchief.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *(args or []),
            ],
            env=full_env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        started.append(process)
        url = f"http://127.0.0.1:{port}"
        wait_ready(url, process, log_path)
        return LiveServer(url, keys, home, process, full_env)

    yield start
    stop_processes(started, timeout=15)


@pytest.fixture
def live_server(live_server_factory: Callable[..., LiveServer]) -> LiveServer:
    return live_server_factory()


def sse_events(text: str) -> list[dict[str, Any]]:
    """Parse an SSE body into ``[{"id", "event", "data"}]`` (comments are skipped)."""
    out = []
    for block in text.split("\n\n"):
        item: dict[str, Any] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                item["data"] = json.loads(value)
            elif name in ("id", "event", "retry"):
                item[name] = value
        if "event" in item:
            out.append(item)
    return out
