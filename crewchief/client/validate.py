"""Checks on a new operation's fields, before anything is recorded or run."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from crewchief.config import Settings
from crewchief.errors import InvalidRequest, ModelConfigError

MAX_REQUEST_CHARS = 100_000


def invalid(path: str, message: str) -> InvalidRequest:
    """A refusal naming the field: ``path: message``, with ``details`` for API clients."""
    return InvalidRequest(f"{path}: {message}", [{"path": path, "message": message}])


def validate_models(models: Any, settings: Settings) -> dict[str, str]:
    """Check per-operation model overrides: known aliases bound to specs of known providers."""
    from crewchief.config import ALIASES
    from crewchief.models.registry import ModelRegistry

    if models is None:
        return {}
    if not isinstance(models, dict):
        raise invalid("models", "expected an object mapping alias to 'provider:model'")
    for alias, spec in models.items():
        if alias not in ALIASES:
            raise invalid(f"models.{alias}", f"unknown alias; expected one of {list(ALIASES)}")
        if not isinstance(spec, str) or ":" not in spec:
            raise invalid(f"models.{alias}", f"expected 'provider:model', got {spec!r}")
    try:
        ModelRegistry(settings, models).check()
    except ModelConfigError as exc:
        raise invalid("models", str(exc)) from None
    return dict(models)


def validate_request(request: Any, workspace: Any, route: Any) -> tuple[str, str | None]:
    """Check a new operation's fields before anything runs.

    Returns:
        The stripped request and the workspace as an absolute path (or None).
    """
    if not isinstance(request, str) or not request.strip():
        raise invalid("request", "expected a non-empty string")
    if len(request) > MAX_REQUEST_CHARS:
        raise invalid(
            "request", f"expected at most {MAX_REQUEST_CHARS} characters, got {len(request)}"
        )
    if route not in (None, "fast", "plan"):
        raise invalid("route", f"expected 'fast', 'plan' or null, got {route!r}")
    if workspace is None:
        return request.strip(), None
    return request.strip(), str(workspace_directory(workspace))


def path_problem(exc: BaseException) -> str:
    """Why the file system refused a path, in words (no traceback, no errno number)."""
    if isinstance(exc, RuntimeError):  # pathlib's "Symlink loop from ..." (Python < 3.13)
        return "it runs into a symbolic link loop"
    if isinstance(exc, ValueError):
        return "it contains a NUL byte"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror[0].lower() + exc.strerror[1:]
    return "it cannot be used as a path"


def workspace_path(workspace: Any) -> Path:
    """``workspace`` as an absolute path with ``~`` expanded and links resolved (it need not exist).

    Raises:
        InvalidRequest: naming ``workspace`` when it is not a path the file system can
            resolve (a symbolic link loop, a name longer than the file system allows, a NUL
            byte, an unknown ``~user``).
    """
    if not isinstance(workspace, str | os.PathLike):
        raise invalid("workspace", f"expected a path, got {type(workspace).__name__}")
    try:
        path = Path(workspace).expanduser()
    except RuntimeError:  # "~someone" for a user without a home directory
        raise invalid(
            "workspace", f"{str(workspace)!r} is not a usable path: its '~' names no home directory"
        ) from None
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError) as exc:
        raise _unusable(workspace, exc) from None


def is_directory(path: Path, given: Any = None) -> bool:
    """Whether ``path`` is an existing directory.

    Raises:
        InvalidRequest: naming ``workspace`` when the file system refuses to look (a
            name too long, a symbolic link loop, no permission); the message shows
            ``given`` (default: ``path``).
    """
    try:
        return path.is_dir()
    except (OSError, RuntimeError, ValueError) as exc:
        raise _unusable(path if given is None else given, exc) from None


def _unusable(given: Any, exc: BaseException) -> InvalidRequest:
    return invalid("workspace", f"{str(given)!r} is not a usable path: {path_problem(exc)}")


def workspace_directory(workspace: Any) -> Path:
    """The workspace as an absolute, resolved, existing directory.

    Raises:
        InvalidRequest: naming ``workspace``.
    """
    path = workspace_path(workspace)
    if not is_directory(path, workspace):
        raise invalid("workspace", f"expected an existing directory, got {str(workspace)!r}")
    return path


def non_finite_number(value: Any) -> str | None:
    """Where in ``value`` (nested dicts and lists) a NaN or infinite float is, or None.

    Iterative, so any nesting the JSON parser accepted is walked without recursion.
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, node = stack.pop()
        if isinstance(node, float) and not math.isfinite(node):
            return where
        if isinstance(node, dict):
            stack.extend((f"{where}.{k}", v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((f"{where}.{i}", v) for i, v in enumerate(node))
    return None


MAX_METADATA_BYTES = 16_384


def validate_metadata(metadata: Any) -> dict[str, Any] | None:
    """Check an operation's own data: an object of JSON values, finite numbers, at most 16 kB.

    Raises:
        InvalidRequest: naming ``metadata`` (and where in it a bad number is).
    """
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise invalid("metadata", f"expected an object, got {type(metadata).__name__}")
    where = non_finite_number(metadata)
    if where is not None:
        raise invalid(
            "metadata",
            f"must not contain NaN or Infinity (found at metadata{where}):"
            " JSON has no such numbers",
        )
    try:
        size = len(json.dumps(metadata, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise invalid("metadata", f"expected JSON values only ({exc})") from None
    if size > MAX_METADATA_BYTES:
        raise invalid("metadata", f"at most {MAX_METADATA_BYTES} bytes as JSON, got {size}")
    return metadata
