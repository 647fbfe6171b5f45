"""One MCP server's session, owned by one background task.

The SDK's client is an anyio context manager that must be entered and left by the same task,
so a task of its own opens it, lists the server's tools and then waits to be told to stop;
callers of any task send requests through the open session meanwhile (the SDK correlates
concurrent requests). The ``mcp`` package is imported here only, when a session starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from crewchief.mcp_config import McpServerConfig

log = logging.getLogger(__name__)

# How long a session may take to wind down (the SDK's stdio shutdown is bounded at about 6 s).
_CLOSE_WAIT = 10.0
# JSON-RPC codes the SDK raises MCPError with (mcp_types.jsonrpc).
CONNECTION_CLOSED = -32000
REQUEST_TIMEOUT = -32001


class Session:
    """A live connection to one server: started with :meth:`start`, ended with :meth:`close`."""

    def __init__(self, name: str, cfg: McpServerConfig, log_dir: Path | None) -> None:
        self.name, self.cfg, self.log_dir = name, cfg, log_dir
        self.tools: list[Any] = []  # the server's mcp_types.Tool objects, as listed at start
        self._client: Any = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()

    async def start(self) -> None:
        """Connect (start the process, or reach the URL), initialize and list the tools.

        Raises:
            TimeoutError: this took longer than ``startup_timeout_seconds``.
            Exception: the server could not be started or reached (the session is closed).
        """
        ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._task = asyncio.create_task(self._own(ready), name=f"mcp-session:{self.name}")
        try:
            async with asyncio.timeout(self.cfg.startup_timeout_seconds):
                await asyncio.shield(ready)
        except BaseException:
            # The SDK's shutdown takes seconds: the caller awaits close() off its own bound.
            self._stop.set()
            if not ready.done():
                ready.cancel()
            self._task.cancel()
            raise

    @property
    def usable(self) -> bool:
        """Whether requests can still be sent: the owner runs and the transport is open."""
        if self._client is None or self._task is None or self._task.done():
            return False
        # The SDK's dispatcher marks itself closed when the server's end of the transport
        # closes (the process exited); read defensively, it is not public.
        dispatcher = getattr(getattr(self._client, "_session", None), "_dispatcher", None)
        return not getattr(dispatcher, "_closed", False)

    async def call(self, tool: str, args: dict[str, Any]) -> Any:
        """``tools/call``; the SDK raises MCPError(REQUEST_TIMEOUT) after ``timeout_seconds``."""
        return await self._client.call_tool(
            tool, args, read_timeout_seconds=self.cfg.timeout_seconds
        )

    async def list_tools(self) -> list[Any]:
        """Every tool of the server, page by page (at most 100 pages)."""
        tools: list[Any] = []
        cursor = None
        for _ in range(100):
            page = await self._client.list_tools(cursor=cursor)
            tools += page.tools
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools

    async def close(self) -> None:
        """End the session (and the process of a stdio server); bounded."""
        self._stop.set()
        task = self._task
        if task is None:
            return
        if task.done():
            if not task.cancelled():
                task.exception()  # retrieved, so asyncio does not log it as never retrieved
            return
        try:
            async with asyncio.timeout(_CLOSE_WAIT):
                await asyncio.shield(task)
        except TimeoutError:
            task.cancel()
            log.warning("MCP server %s: its session did not end in %gs", self.name, _CLOSE_WAIT)
        except (Exception, asyncio.CancelledError):  # noqa: BLE001 - the owner logs its failure
            if not task.done():
                raise

    async def _own(self, ready: asyncio.Future[None]) -> None:
        try:
            async with AsyncExitStack() as stack:
                self._client = await stack.enter_async_context(await self._open(stack))
                self.tools = await self.list_tools()
                ready.set_result(None)
                await self._stop.wait()
        except BaseException as exc:  # noqa: BLE001 - reported to the starter, or logged
            if not ready.done():
                failure = exc if isinstance(exc, Exception) else ConnectionError("cancelled")
                ready.set_exception(failure)
            elif not self._stop.is_set():
                log.warning("MCP server %s: session ended: %s", self.name, describe(exc))
            if isinstance(exc, asyncio.CancelledError):
                raise
        finally:
            self._client = None

    async def _open(self, stack: AsyncExitStack) -> Any:
        from mcp.client.client import Client
        from mcp_types import Implementation

        info = Implementation(name="crewchief", version=_version())
        if self.cfg.url is not None:
            import httpx2
            from mcp.client.streamable_http import streamable_http_client

            # Our own HTTP client, for the configured headers; the SDK's read timeout for
            # its event streams, since a call's own bound is applied per request.
            http = await stack.enter_async_context(
                httpx2.AsyncClient(
                    headers=self.cfg.headers, timeout=httpx2.Timeout(30.0, read=300.0)
                )
            )
            transport = streamable_http_client(self.cfg.url, http_client=http)
        else:
            from mcp.client.stdio import StdioServerParameters, stdio_client

            params = StdioServerParameters(
                command=self.cfg.command or "",
                args=self.cfg.args,
                env=self.cfg.env,
                cwd=self.cfg.cwd,
            )
            transport = stdio_client(params, errlog=self._errlog(stack))
        return Client(transport, cache=None, client_info=info)

    def _errlog(self, stack: AsyncExitStack) -> Any:
        """Where the server's stderr goes: ``<home>/mcp/NAME.log``, or nowhere."""
        if self.log_dir is None:
            return stack.enter_context(open(_devnull(), "w"))  # noqa: SIM115
        with contextlib.suppress(OSError):
            self.log_dir.mkdir(parents=True, exist_ok=True)
            return stack.enter_context(open(self.log_dir / f"{self.name}.log", "a"))  # noqa: SIM115
        return sys.stderr


def result_text(result: Any) -> tuple[bool, str]:
    """A ``CallToolResult`` as (ok, text for the model): text blocks as they are, other
    content named with its type and size, structured content as JSON when nothing else came."""
    parts: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            size = len(block.data) * 3 // 4
            parts.append(f"[{kind} {block.mime_type}, about {size} bytes]")
        elif kind == "resource_link":
            parts.append(f"[resource {block.uri}]")
        elif kind == "resource":
            text = getattr(block.resource, "text", None)
            parts.append(text if text is not None else f"[resource {block.resource.uri}, binary]")
        else:
            parts.append(f"[{kind or 'unknown'} content]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return not result.is_error, "\n".join(parts)


def error_code(exc: BaseException) -> int | None:
    """The JSON-RPC code of an MCPError (None for anything else)."""
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None)
    if code is None:
        code = getattr(exc, "code", None)
    return code if isinstance(code, int) else None


def describe(exc: BaseException) -> str:
    """One line for an exception, the innermost of an exception group."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    message = getattr(exc, "message", None)
    raw = (message if isinstance(message, str) else str(exc)).strip()
    text = raw.splitlines()[0] if raw else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _devnull() -> str:
    import os

    return os.devnull


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("crewchief")
    except PackageNotFoundError:
        return "0"
