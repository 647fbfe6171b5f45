"""crewchief as an MCP server: start, follow, steer and cancel operations from any MCP client.

:func:`build_mcp_server` makes the server on top of an open
:class:`~crewchief.client.facade.Crewchief`. ``crewchief mcp`` serves it over stdio for the
local user; ``crewchief serve`` mounts it at ``/mcp`` (streamable HTTP), where each request
carries the :class:`Principal` of its API key in the ASGI scope under :data:`PRINCIPAL_KEY`.

Example::

    async with Crewchief() as chief:
        await build_mcp_server(chief).run_stdio_async()
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError, UnexpectedToolError
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types import ToolAnnotations
from pydantic import ValidationError

from crewchief.client.facade import Crewchief
from crewchief.interop._mcp_models import EVENTS_URI, PLAN_URI
from crewchief.interop._mcp_tools import Tools
from crewchief.interop.principal import LOCAL, Principal

# Where the HTTP side puts the caller's Principal in each request's ASGI scope.
PRINCIPAL_KEY = "crewchief.principal"

INSTRUCTIONS = """crewchief plans a request with an expensive model and delegates its tasks to
cheaper ones. start_operation starts one and returns its id at once; wait_for_operation
follows it (progress: tasks ended of the plan's tasks) until it ends, its plan awaits approval
(answer with review_plan) or the wait times out (call it again). get_operation reads the
answer, cancel_operation stops it, rerun_task re-runs a task."""


def _any_workspace(workspace: str | None) -> str | None:
    return workspace


def _any_models(models: dict[str, str] | None) -> dict[str, str] | None:
    return models


class _Server(MCPServer):
    """MCPServer whose argument errors name the argument and what was expected."""

    _arguments: dict[str, set[str]] | None = None

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context | None = None
    ) -> Any:
        if self._arguments is None:
            listed = await self.list_tools()
            self._arguments = {t.name: set(t.input_schema.get("properties", {})) for t in listed}
        known = self._arguments.get(name)
        unknown = sorted(set(arguments) - known) if known is not None else []
        if unknown:
            raise ToolError(
                f"{unknown[0]}: unknown argument; expected any of {', '.join(sorted(known or ()))}"
            )
        try:
            return await super().call_tool(name, arguments, context)
        except UnexpectedToolError:
            raise
        except ToolError as exc:
            cause = exc.__cause__
            if isinstance(cause, ValidationError):
                raise ToolError(readable(cause)) from cause
            if type(cause) is ToolError:  # raised by the tool: its own message, no prefix
                raise ToolError(str(cause)) from cause
            raise


def readable(exc: ValidationError) -> str:
    """The first argument error as ``name: expected ..., got ...`` (and how many more)."""
    errors = exc.errors(include_url=False)
    lines = [_one(e) for e in errors]
    more = f" (and {len(lines) - 1} more)" if len(lines) > 1 else ""
    return (lines[0] if lines else "invalid arguments") + more


def _one(error: Any) -> str:
    path = ".".join(str(p) for p in error["loc"]) or "arguments"
    kind, ctx = error["type"], error.get("ctx") or {}
    got = f", got {error['input']!r}" if "input" in error and kind != "missing" else ""
    if kind == "missing":
        return f"{path}: required"
    if kind == "literal_error":
        options = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
        return f"{path}: expected one of {', '.join(options)}{got}"
    return f"{path}: {error['msg'][0].lower()}{error['msg'][1:]}{got}"


def build_mcp_server(
    chief: Crewchief,
    *,
    principal: Principal | None = LOCAL,
    workspace_rule: Callable[[str | None], str | None] = _any_workspace,
    models_rule: Callable[[dict[str, str] | None], dict[str, str] | None] = _any_models,
) -> MCPServer:
    """The MCP server of an open Crewchief: its tools and resources.

    Args:
        chief: The open facade the tools call.
        principal: Who calls when a request carries no :class:`Principal` in its ASGI scope
            (stdio: the local user). None: such a request is refused.
        workspace_rule: The server's rule on a workspace (e.g. allowed roots): returns the
            workspace to use, raises :class:`~crewchief.errors.InvalidRequest` naming it.
        models_rule: The server's rule on an operation's model bindings (same contract).
    """
    from crewchief import __version__

    def caller(ctx: Context) -> Principal:
        request = ctx.request_context.request if ctx is not None else None
        scope = getattr(request, "scope", None) or {}
        found = scope.get(PRINCIPAL_KEY, principal)
        if found is None:
            raise ToolError("unauthorized: this request carries no API key")
        return found

    tools = Tools(chief, caller, workspace_rule, models_rule)
    # The SDK sets up the root logger (a handler, a level) when it has none: that is the
    # application's to decide, so it is made to find one.
    root = logging.getLogger()
    guard = logging.NullHandler() if not root.handlers else None
    if guard is not None:
        root.addHandler(guard)
    try:
        server = _Server("crewchief", version=__version__, instructions=INSTRUCTIONS)
    finally:
        if guard is not None:
            root.removeHandler(guard)
    reads = ToolAnnotations(read_only_hint=True, open_world_hint=False)
    changes = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=True)
    for fn, hints in (
        (tools.start_operation, changes),
        (tools.get_operation, reads),
        (tools.wait_for_operation, reads),
        (tools.review_plan, changes),
        (tools.cancel_operation, ToolAnnotations(destructive_hint=True, idempotent_hint=True)),
        (tools.rerun_task, changes),
        (tools.search_workspace, reads),
        (tools.list_skills, reads),
    ):
        server.add_tool(fn, annotations=hints, structured_output=True)
    server.resource(
        PLAN_URI, name="operation_plan", mime_type="application/json",
        description="An operation's plan: its text and tasks with their status.",
    )(tools.plan_resource)  # fmt: skip
    server.resource(
        EVENTS_URI, name="operation_events", mime_type="application/json",
        description="An operation's stored events, in order.",
    )(tools.events_resource)  # fmt: skip
    return server


def http_manager(server: MCPServer) -> StreamableHTTPSessionManager:
    """The streamable HTTP endpoint of ``server``: run it (``async with manager.run()``) and
    hand it requests (``manager.handle_request``).

    Stateless: every POST is served on its own, so any instance behind a load balancer can
    answer any request; a tool's progress still streams back on its POST's response.
    DNS-rebinding checks are the host application's (API keys, or loopback-only host names
    in keyless mode): the SDK's own would refuse every host name but loopback ones.
    """
    server.streamable_http_app(
        stateless_http=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )
    return server.session_manager


__all__ = [
    "LOCAL",
    "PRINCIPAL_KEY",
    "Principal",
    "build_mcp_server",
    "http_manager",
]
