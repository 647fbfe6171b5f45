"""``[mcp.servers.NAME]``: the MCP servers whose tools task executors (and the planner) may use.

A leaf like :mod:`crewchief.config`, which refers to :class:`McpSettings` from ``Settings.mcp``.
Each server is either a command crewchief starts and talks to over stdio, or the URL of a
server that speaks MCP's streamable HTTP transport. See docs/mcp-tools.md.
"""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# A server's name is part of every tool name (``mcp:NAME/tool``, wire ``mcp__NAME__tool``),
# and OpenAI function names allow at most 64 characters of [a-zA-Z0-9_-].
SERVER_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


class McpServerConfig(BaseModel):
    """One MCP server: a stdio ``command`` or a streamable HTTP ``url``, and its bounds."""

    model_config = ConfigDict(extra="forbid")

    command: str | None = Field(
        None, min_length=1, description="Program started for a stdio server (not with url)."
    )
    args: list[str] = Field(default_factory=list, description="The command's arguments.")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables the command gets, besides PATH, HOME, USER, LOGNAME,"
        " SHELL and TERM (nothing else of crewchief's environment is passed).",
    )
    cwd: Path | None = Field(None, description="The command's working directory.")
    url: str | None = Field(
        None, description="A streamable HTTP server's endpoint, e.g. http://127.0.0.1:9000/mcp."
    )
    headers: dict[str, str] = Field(
        default_factory=dict, description="HTTP headers sent with every request (url only)."
    )
    timeout_seconds: float = Field(
        30.0, gt=0, le=3600, description="Seconds one tool call may take before it fails."
    )
    startup_timeout_seconds: float = Field(
        30.0,
        gt=0,
        le=600,
        description="Seconds starting (or reaching) the server and listing its tools may take.",
    )
    max_output_chars: int = Field(
        20_000,
        gt=0,
        le=1_000_000,
        description="Characters of one call's result given to the model; the rest is cut off"
        " with a note.",
    )
    tools: list[str] | None = Field(
        None, description="Offer only these of the server's tools (default: all of them)."
    )
    planner: bool = Field(
        True, description="Offer the server's tools to the planner too, while it explores."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"https?://[^\s/]+", value):
            raise ValueError(f"expected an http:// or https:// URL, got {value!r}")
        return value

    @field_validator("tools")
    @classmethod
    def _tool_names(cls, value: list[str] | None) -> list[str] | None:
        for name in value or []:
            if not name.strip() or name != name.strip():
                raise ValueError(f"tool name {name!r} must be non-empty, without spaces around it")
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> McpServerConfig:
        if (self.command is None) == (self.url is None):
            raise ValueError(
                "set exactly one of command (a stdio server crewchief starts) or url"
                " (a streamable HTTP server)"
            )
        if self.url is not None:
            given = [k for k in ("args", "env", "cwd") if getattr(self, k)]
            if given:
                raise ValueError(f"{', '.join(given)} apply to a command only, not to a url server")
        if self.command is not None and self.headers:
            raise ValueError("headers apply to a url server only, not to a command")
        return self


class McpSettings(BaseModel):
    """``[mcp]``: the MCP servers crewchief is a client of."""

    model_config = ConfigDict(extra="forbid")

    servers: dict[str, McpServerConfig] = Field(
        default_factory=dict,
        description="MCP servers by name ([mcp.servers.NAME]); their tools are named"
        " mcp:NAME/tool in skills' allowed-tools and in events.",
    )

    @field_validator("servers")
    @classmethod
    def _server_names(cls, value: dict[str, McpServerConfig]) -> dict[str, McpServerConfig]:
        for name in value:
            if not SERVER_NAME.fullmatch(name):
                raise ValueError(
                    f"server name {name!r} is invalid: 1-32 lowercase letters, digits, '_' or"
                    " '-', starting with a letter or digit"
                )
        return value
