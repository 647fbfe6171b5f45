"""Keyless dev mode answers only requests addressed to a loopback host name.

Without keys, any web page the developer opens could drive the server through
DNS rebinding: its own host name, re-pointed at 127.0.0.1, reaches the server
with ``Host: evil.example``. A browser always sends the name it resolved, so
accepting only ``localhost`` and loopback addresses (any port) shuts that out.
"""

from __future__ import annotations

import ipaddress
from typing import Any

from crewchief.api.errors import error_response

ALLOWED = "localhost, 127.0.0.1 or [::1]"


def loopback_host_header(value: str) -> bool:
    """Whether a ``Host`` header names this machine: ``localhost`` or a loopback address.

    The port, if any, may be any number. IPv6 addresses are bracketed (``[::1]:8000``).
    """
    host = value.strip().lower()
    if host.startswith("["):
        name, bracket, port = host[1:].partition("]")
        if not bracket or (port and not (port.startswith(":") and port[1:].isdigit())):
            return False
        return _loopback_ip(name, version=6)
    name, colon, port = host.partition(":")
    if colon and not port.isdigit():
        return False  # also a bare IPv6 address, which a Host header must bracket
    return name == "localhost" or _loopback_ip(name, version=4)


def _loopback_ip(name: str, *, version: int) -> bool:
    try:
        ip = ipaddress.ip_address(name)
    except ValueError:
        return False
    return ip.version == version and ip.is_loopback


class LoopbackHostOnly:
    """Pure ASGI middleware: 400 ``host_not_allowed`` unless ``Host`` names a loopback host."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        host = next((v for k, v in scope.get("headers", ()) if k == b"host"), None)
        text = host.decode("latin-1") if host is not None else None
        if text is not None and loopback_host_header(text):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})  # policy violation
            return
        shown = repr(text) if text is not None else "(none)"
        response = error_response(
            400,
            "host_not_allowed",
            f"Host {shown} is not allowed: without API keys (--no-auth) this server answers"
            f" only requests to a loopback host name ({ALLOWED}, any port)",
        )
        await response(scope, receive, send)
