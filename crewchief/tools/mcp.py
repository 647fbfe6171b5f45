"""MCP servers' tools for task executors and the planner: names, listing and bounded calls.

A tool of the server ``NAME`` (``[mcp.servers.NAME]``) is ``mcp:NAME/tool`` in skills'
``allowed-tools``, in policies and in events. Model APIs take function names of
``[a-zA-Z0-9_-]{1,64}`` only, so the model is offered a wire name, ``mcp__NAME__tool``, and
either name is accepted back.

:class:`McpManager` (one per :class:`~crewchief.runtime.services.Services`) connects to a
server on first use and keeps one session per server, lists its tools once (again after a
restart) and calls them within ``timeout_seconds``. A server that died is restarted on the
next call, with backoff; after repeated failures it is reported unavailable for a while.
A call always returns an :class:`McpCallResult`: failures are text for the model, never
exceptions, and never take longer than the server's start-up plus call bounds.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crewchief import metrics
from crewchief.mcp_config import McpServerConfig
from crewchief.tools import _mcp_session
from crewchief.tools._mcp_session import Session, describe, error_code, result_text
from crewchief.tools.mcp_names import (
    PATTERN,
    WIRE_PARTS,
    McpTool,
    allows,
    canonical_name,
    check_pattern,
    is_mcp_name,
    pattern_server,
    wire_name,
)

__all__ = [
    "McpCallResult",
    "McpManager",
    "McpTool",
    "allows",
    "canonical_name",
    "check_pattern",
    "is_mcp_name",
    "pattern_server",
    "wire_name",
]

log = logging.getLogger(__name__)

# Failed starts (or deaths) in a row before a server is reported unavailable for a while.
MAX_FAILURES = 3
UNAVAILABLE_SECONDS = 60.0
_MAX_BACKOFF = 30.0
# A call's hard bound beyond the SDK's own timeout: a write that cannot go out.
_HARD_MARGIN = 2.0


@dataclass(frozen=True, slots=True)
class McpCallResult:
    """What one call gave: text for the model, and what the event and the log show."""

    ok: bool
    output: str
    server: str
    duration_ms: int = 0
    truncated: bool = False
    restarted: bool = False
    # None, or: timeout, disconnected, unavailable, start_failed, tool_error, error
    error: str | None = None


class _Unavailable(Exception):
    """The server failed too often in a row; it is not tried again for a while."""


class _StartFailed(Exception):
    """The server could not be started or reached (the message says why)."""


def _start_bound(cfg: McpServerConfig) -> float:
    # Start-up, plus the longest backoff before an attempt, plus the wind-down of a failure.
    return cfg.startup_timeout_seconds + 3.0


@dataclass
class _Server:
    name: str
    cfg: McpServerConfig
    session: Session | None = None
    tools: list[McpTool] | None = None
    failures: int = 0
    retry_at: float = 0.0
    last_error: str = ""
    starts: int = 0
    calls: int = 0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class McpManager:
    """The MCP servers of one process (see the module docstring); safe for concurrent tasks."""

    def __init__(
        self, servers: Mapping[str, McpServerConfig], *, log_dir: Path | None = None
    ) -> None:
        self._servers = {name: _Server(name, cfg) for name, cfg in servers.items()}
        self._log_dir = log_dir
        self._wire: dict[str, McpTool] = {}
        self._background: set[asyncio.Task[None]] = set()

    @property
    def names(self) -> list[str]:
        """The configured servers' names."""
        return list(self._servers)

    def planner_servers(self) -> list[str]:
        """The servers whose tools the planner may use too."""
        return [s.name for s in self._servers.values() if s.cfg.planner]

    def status(self) -> dict[str, dict[str, Any]]:
        """Per server: whether a session is up, starts, calls, failures in a row, last error."""
        return {
            s.name: {
                "connected": bool(s.session and s.session.usable),
                "starts": s.starts,
                "calls": s.calls,
                "failures": s.failures,
                "last_error": s.last_error,
            }
            for s in self._servers.values()
        }

    async def tools(self, servers: Iterable[str] | None = None) -> tuple[list[McpTool], list[str]]:
        """The tools of these servers (default: all), listed on first use; and a problem line
        per server that could not be reached (its tools are left out)."""
        wanted = self.names if servers is None else servers
        chosen = [self._servers[n] for n in wanted if n in self._servers]
        found = await asyncio.gather(*(self._listed(s) for s in chosen))
        tools: list[McpTool] = []
        problems: list[str] = []
        for listed, problem in found:
            tools += listed
            if problem:
                problems.append(problem)
        return tools, problems

    def resolve(self, name: str) -> McpTool | None:
        """The listed tool a model's name means: a wire name or ``mcp:NAME/tool``."""
        tool = self._wire.get(name)
        if tool is not None or not is_mcp_name(name):
            return tool
        match = PATTERN.fullmatch(name)
        if match and match.group(1) in self._servers:
            return self._wire.get(wire_name(match.group(1), match.group(2)))
        return None

    def canonical(self, name: str) -> str:
        """``mcp:NAME/tool`` for a wire name of a configured server; other names unchanged."""
        tool = self.resolve(name)
        if tool is not None:
            return tool.name
        match = WIRE_PARTS.fullmatch(name)
        if match and match.group(1) in self._servers:
            return canonical_name(match.group(1), match.group(2))
        return name

    async def call(self, tool: McpTool, args: dict[str, Any]) -> McpCallResult:
        """Call ``tool``: start or restart its server as needed, bounded by the server's
        ``startup_timeout_seconds`` plus ``timeout_seconds``; never raises for its failures."""
        srv = self._servers[tool.server]
        srv.calls += 1
        started = time.monotonic()
        restarted = False
        try:
            async with asyncio.timeout(_start_bound(srv.cfg)):
                session, restarted = await self._session(srv)
        except (_Unavailable, _StartFailed) as exc:
            kind = "unavailable" if isinstance(exc, _Unavailable) else "start_failed"
            return self._done(srv, tool, started, False, str(exc), kind, restarted)
        except TimeoutError:  # waited for another call's start of the same server
            text = f"MCP server {srv.name} did not become ready in {_start_bound(srv.cfg):g}s"
            return self._done(srv, tool, started, False, text, "start_failed", restarted)
        try:
            async with asyncio.timeout(srv.cfg.timeout_seconds + _HARD_MARGIN):
                result = await session.call(tool.tool, dict(args))
        except TimeoutError:
            # Not even the SDK's own timeout came back: the transport is stuck.
            self._broken(srv, session, "a call could not be sent or answered")
            text = f"{tool.name} timed out after {srv.cfg.timeout_seconds:g}s"
            return self._done(srv, tool, started, False, text, "timeout", restarted)
        except Exception as exc:  # noqa: BLE001 - any failure is text for the model
            return self._call_failed(srv, session, tool, exc, started, restarted)
        srv.failures = 0
        ok, text = result_text(result)
        return self._done(srv, tool, started, ok, text, None if ok else "tool_error", restarted)

    def _call_failed(
        self,
        srv: _Server,
        session: Session,
        tool: McpTool,
        exc: Exception,
        started: float,
        restarted: bool,
    ) -> McpCallResult:
        code = error_code(exc)
        if code == _mcp_session.REQUEST_TIMEOUT:
            self._probe(srv, session)  # a slow tool, or a server that stopped answering?
            text = f"{tool.name} timed out after {srv.cfg.timeout_seconds:g}s"
            return self._done(srv, tool, started, False, text, "timeout", restarted)
        if code == _mcp_session.CONNECTION_CLOSED or not session.usable:
            self._broken(srv, session, "the connection closed during a call")
            text = (
                f"MCP server {srv.name} closed the connection during the call (it exited or"
                " dropped it); it is restarted on the next call"
            )
            return self._done(srv, tool, started, False, text, "disconnected", restarted)
        return self._done(srv, tool, started, False, describe(exc), "error", restarted)

    def _done(
        self,
        srv: _Server,
        tool: McpTool,
        started: float,
        ok: bool,
        text: str,
        error: str | None,
        restarted: bool,
    ) -> McpCallResult:
        seconds = time.monotonic() - started
        limit = srv.cfg.max_output_chars
        truncated = len(text) > limit
        if truncated:
            text = (
                f"{text[:limit]}\n[output truncated: {len(text):,} characters, the first"
                f" {limit:,} shown]"
            )
        if error is not None:
            log.log(logging.INFO if error == "tool_error" else logging.WARNING,
                "MCP %s failed (%s) after %.0f ms: %s", tool.name, error,
                seconds * 1000, text[:300])  # fmt: skip
        metrics.mcp_call(srv.name, "ok" if ok else error or "error", seconds)
        return McpCallResult(ok, text, srv.name, round(seconds * 1000), truncated, restarted, error)

    async def _listed(self, srv: _Server) -> tuple[list[McpTool], str]:
        if srv.tools is not None:
            return srv.tools, ""
        try:
            async with asyncio.timeout(_start_bound(srv.cfg)):
                await self._session(srv)
        except (_Unavailable, _StartFailed) as exc:
            return [], str(exc)
        except TimeoutError:
            return [], f"MCP server {srv.name} did not become ready in {_start_bound(srv.cfg):g}s"
        return srv.tools or [], ""

    async def _session(self, srv: _Server) -> tuple[Session, bool]:
        """The server's open session, started now when there is none (one start at a time)."""
        async with srv.lock:
            if srv.session is not None and srv.session.usable:
                return srv.session, False
            restart = srv.session is not None or srv.starts > 0
            if srv.session is not None:
                self._broken(srv, srv.session, "its session ended")
            wait = srv.retry_at - time.monotonic()
            if srv.failures >= MAX_FAILURES and wait > 0:
                raise _Unavailable(
                    f"MCP server {srv.name} is unavailable after {srv.failures} failures in a"
                    f" row (last: {srv.last_error}); next try in {wait:.0f}s"
                )
            if wait > 0:
                await asyncio.sleep(wait)  # the backoff; the caller's bound still applies
            session = Session(srv.name, srv.cfg, self._log_dir)
            try:
                await session.start()
            except BaseException as exc:
                self._spawn(session.close())
                if not isinstance(exc, Exception):
                    raise
                raise _StartFailed(self._start_error(srv, exc)) from None
            srv.session, srv.starts = session, srv.starts + 1
            self._adopt(srv, session.tools)
            if restart:
                log.warning("MCP server %s restarted (start %d)", srv.name, srv.starts)
            return session, restart

    def _adopt(self, srv: _Server, listed: list[Any]) -> None:
        wanted = srv.cfg.tools
        tools = [
            McpTool(srv.name, t.name, t.description or "", _schema(t))
            for t in listed
            if wanted is None or t.name in wanted
        ]
        missing = sorted(set(wanted or ()) - {t.tool for t in tools})
        if missing:
            log.warning("MCP server %s has no tool(s) %s", srv.name, ", ".join(missing))
        for old in srv.tools or []:
            self._wire.pop(old.wire, None)
        srv.tools = tools
        self._wire.update({t.wire: t for t in tools})

    def _start_error(self, srv: _Server, exc: BaseException) -> str:
        reason = (
            f"did not start within {srv.cfg.startup_timeout_seconds:g}s"
            if isinstance(exc, TimeoutError)
            else f"could not be started: {describe(exc)}"
        )
        self._failed(srv, reason)
        return f"MCP server {srv.name} {reason}"

    def _failed(self, srv: _Server, reason: str) -> None:
        srv.failures += 1
        srv.last_error = reason
        if srv.failures >= MAX_FAILURES:
            srv.retry_at = time.monotonic() + UNAVAILABLE_SECONDS
        else:
            srv.retry_at = time.monotonic() + min(_MAX_BACKOFF, 0.5 * 2 ** (srv.failures - 1))
        log.warning("MCP server %s: %s (failure %d in a row)", srv.name, reason, srv.failures)

    def _broken(self, srv: _Server, session: Session, reason: str) -> None:
        """Drop a session that cannot be used; it winds down in the background."""
        if srv.session is session:
            srv.session = None
            self._failed(srv, reason)
        self._spawn(session.close())

    def _probe(self, srv: _Server, session: Session) -> None:
        """After a timeout: a server that no longer lists its tools is dropped."""

        async def probe() -> None:
            try:
                async with asyncio.timeout(min(5.0, srv.cfg.startup_timeout_seconds)):
                    await session.list_tools()
            except Exception:  # noqa: BLE001 - a stuck or closed session
                self._broken(srv, session, "it stopped answering after a timed-out call")

        self._spawn(probe())

    def _spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def close(self) -> None:
        """End every session; a stdio server's process ends with it."""
        sessions = [s.session for s in self._servers.values() if s.session is not None]
        for srv in self._servers.values():
            srv.session = None
        await asyncio.gather(*(s.close() for s in sessions), return_exceptions=True)
        if self._background:
            await asyncio.wait(list(self._background), timeout=_mcp_session._CLOSE_WAIT)


def _schema(tool: Any) -> dict[str, Any]:
    schema = tool.input_schema
    if hasattr(schema, "model_dump"):
        schema = schema.model_dump(by_alias=True, exclude_none=True, mode="json")
    schema = dict(schema or {})
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})
    return schema
