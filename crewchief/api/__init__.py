"""HTTP interface: the REST API (operations, events) from :func:`create_app`."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # FastAPI loads only when the app is asked for.
    if name == "create_app":
        from crewchief.api.app import create_app

        return create_app
    raise AttributeError(name)


__all__ = ["create_app"]
