"""Names of MCP tools: ``mcp:NAME/tool`` for policies, skills and events, and the wire name
``mcp__NAME__tool`` model APIs accept (see :mod:`crewchief.tools.mcp`)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from crewchief.mcp_config import SERVER_NAME

PREFIX = "mcp:"
_WIRE = re.compile(r"[a-zA-Z0-9_-]{1,64}")
PATTERN = re.compile(rf"mcp:({SERVER_NAME.pattern})/(\S+)")
WIRE_PARTS = re.compile(rf"mcp__({SERVER_NAME.pattern}?)__(.+)")


def canonical_name(server: str, tool: str) -> str:
    """``mcp:NAME/tool``: the name policies, skills and events use."""
    return f"{PREFIX}{server}/{tool}"


def is_mcp_name(name: str) -> bool:
    """Whether ``name`` names an MCP tool or pattern (``mcp:...``)."""
    return name.startswith(PREFIX)


def check_pattern(entry: str) -> str | None:
    """Why ``entry`` is not a valid ``mcp:NAME/tool`` or ``mcp:NAME/*`` (None when it is)."""
    match = PATTERN.fullmatch(entry)
    if match is None:
        return (
            f"{entry!r} is not an MCP tool: write mcp:NAME/tool or mcp:NAME/* (NAME: a server of"
            " [mcp.servers], 1-32 of a-z, 0-9, '_' and '-')"
        )
    tool = match.group(2)
    if "*" in tool and tool != "*":
        return f"{entry!r}: '*' must stand alone after the server name (mcp:NAME/*)"
    return None


def pattern_server(entry: str) -> str | None:
    """The server an ``mcp:NAME/...`` entry names."""
    match = PATTERN.fullmatch(entry)
    return match.group(1) if match else None


def allows(patterns: Iterable[str], name: str) -> bool:
    """Whether ``name`` (``mcp:NAME/tool``) is listed, exactly or by ``mcp:NAME/*``."""
    for entry in patterns:
        if entry == name or (entry.endswith("/*") and name.startswith(entry[:-1])):
            return True
    return False


def wire_name(server: str, tool: str) -> str:
    """The name offered to the model: ``mcp__NAME__tool``, made safe and at most 64 chars."""
    name = f"mcp__{server}__{tool}"
    if _WIRE.fullmatch(name):
        return name
    safe = re.sub(r"[^a-zA-Z0-9_-]", "_", name)
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{safe[:55]}_{digest}"


@dataclass(frozen=True, slots=True)
class McpTool:
    """One tool of one server, as offered to a model."""

    server: str
    tool: str
    description: str
    schema: dict[str, Any]

    @property
    def name(self) -> str:
        """``mcp:NAME/tool``."""
        return canonical_name(self.server, self.tool)

    @property
    def wire(self) -> str:
        """The name the model is offered (see :func:`wire_name`)."""
        return wire_name(self.server, self.tool)

    def spec(self) -> dict[str, Any]:
        """The OpenAI-format function spec: the server's description and input schema."""
        return {
            "type": "function",
            "function": {
                "name": self.wire,
                "description": self.description or f"The {self.tool} tool of {self.server}.",
                "parameters": self.schema,
            },
        }
