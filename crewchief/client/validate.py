"""Checks on a new operation's fields, before anything is recorded or run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from crewchief.config import Settings
from crewchief.errors import InvalidRequest, ModelConfigError

MAX_REQUEST_CHARS = 100_000


def validate_models(models: Any, settings: Settings) -> dict[str, str]:
    """Check per-operation model overrides: known aliases bound to specs of known providers."""
    from crewchief.config import ALIASES
    from crewchief.models.registry import ModelRegistry

    if models is None:
        return {}
    if not isinstance(models, dict):
        raise InvalidRequest("models: expected an object mapping alias to 'provider:model'")
    for alias, spec in models.items():
        if alias not in ALIASES:
            raise InvalidRequest(f"models.{alias}: unknown alias; expected one of {list(ALIASES)}")
        if not isinstance(spec, str) or ":" not in spec:
            raise InvalidRequest(f"models.{alias}: expected 'provider:model', got {spec!r}")
    try:
        ModelRegistry(settings, models).check()
    except ModelConfigError as exc:
        raise InvalidRequest(str(exc)) from None
    return dict(models)


def validate_request(request: Any, workspace: Any, route: Any) -> tuple[str, str | None]:
    """Check a new operation's fields before anything runs.

    Returns:
        The stripped request and the workspace as an absolute path (or None).
    """
    if not isinstance(request, str) or not request.strip():
        raise InvalidRequest("request: expected a non-empty string")
    if len(request) > MAX_REQUEST_CHARS:
        raise InvalidRequest(
            f"request: expected at most {MAX_REQUEST_CHARS} characters, got {len(request)}"
        )
    if route not in (None, "fast", "plan"):
        raise InvalidRequest(f"route: expected 'fast', 'plan' or null, got {route!r}")
    if workspace is None:
        return request.strip(), None
    path = Path(workspace).expanduser()
    if not path.is_dir():
        raise InvalidRequest(f"workspace: expected an existing directory, got {str(workspace)!r}")
    return request.strip(), str(path.resolve())
