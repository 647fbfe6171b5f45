"""Checks on a new operation's fields, before anything is recorded or run, on the
questions asked of the usage ledger, and on ratings."""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crewchief.config import Settings
from crewchief.errors import InvalidRequest, ModelConfigError
from crewchief.results import FEEDBACK_GROUPS, FEEDBACK_TARGETS, USAGE_GROUPS

if TYPE_CHECKING:
    from crewchief.db.feedback import Rating, Target

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


_SPAN = re.compile(r"(\d{1,6})([dh])")
_WHEN = (
    "expected a date (2026-03-01), a date and time (2026-03-01T12:00:00Z) or a span back"
    " from now (7d, 12h)"
)


def usage_time(
    value: Any, field: str, *, end: bool = False, now: datetime | None = None
) -> datetime | None:
    """``since`` or ``until`` as an aware UTC datetime (None stays None).

    A date is the start of that UTC day, or with ``end`` the start of the next one (so
    ``until`` a date includes that day); ``7d`` and ``12h`` are that long before ``now``;
    a date and time without a zone is UTC.

    Raises:
        InvalidRequest: naming ``field``.
    """
    if value is None:
        return None
    when = _when(value, end, now or datetime.now(UTC))
    if when is None:
        raise invalid(field, f"{_WHEN}; got {value!r}")
    if not 1970 <= when.year < 9999:
        raise invalid(field, f"expected a time between 1970 and 9999, got {value!r}")
    return when


def _when(value: Any, end: bool, now: datetime) -> datetime | None:
    try:
        if isinstance(value, str):
            value = value.strip()
            if span := _SPAN.fullmatch(value):
                n, unit = int(span[1]), span[2]
                return now - (timedelta(days=n) if unit == "d" else timedelta(hours=n))
            value = date.fromisoformat(value) if len(value) == 10 else datetime.fromisoformat(value)
        if isinstance(value, datetime):
            aware = value if value.tzinfo else value.replace(tzinfo=UTC)
            return aware.astimezone(UTC)
        if isinstance(value, date):
            start = datetime.combine(value, time(), UTC)
            return start + timedelta(days=1) if end else start
    except (ValueError, OverflowError):
        pass
    return None


def usage_groups(value: Any) -> list[str]:
    """``group_by`` as a list of known groupings, in order, each once: a name, names
    separated by commas, or a list of either.

    Raises:
        InvalidRequest: naming ``group_by`` and the groupings there are.
    """
    if value is None:
        return []
    items: Iterable[Any] = [value] if isinstance(value, str) else value
    if not isinstance(items, Iterable):
        raise invalid("group_by", f"expected names of groupings, got {type(value).__name__}")
    groups: list[str] = []
    for item in items:
        if not isinstance(item, str):
            raise invalid("group_by", f"expected names of groupings, got {item!r}")
        for name in (part.strip() for part in item.split(",")):
            if name and name not in USAGE_GROUPS:
                raise invalid(
                    "group_by",
                    f"unknown grouping {name!r}; expected one or more of {', '.join(USAGE_GROUPS)}",
                )
            if name and name not in groups:
                groups.append(name)
    return groups


def validate_usage(
    *,
    group_by: Any = None,
    since: Any = None,
    until: Any = None,
    **filters: Any,
) -> dict[str, Any]:
    """The checked arguments of a usage report: groupings, the period and exact-match
    filters (``model``, ``role``, ``operation_id``, ``key``, ``owner``: strings of 1 to 200
    characters without NUL bytes; any other value of ``owner``, such as "every owner", is
    left to the caller).

    Raises:
        InvalidRequest: naming the field and what was expected.
    """
    now = datetime.now(UTC)
    start = usage_time(since, "since", now=now)
    stop = usage_time(until, "until", end=True, now=now)
    if start is not None and stop is not None and stop <= start:
        raise invalid("until", f"expected a time after since ({start.isoformat()})")
    for name, value in filters.items():
        if value is None or (name == "owner" and not isinstance(value, str)):
            continue
        if not isinstance(value, str) or not 0 < len(value) <= 200 or "\x00" in value:
            raise invalid(
                name, f"expected a string of 1 to 200 characters without NUL, got {value!r}"
            )
    return {"group_by": usage_groups(group_by), "since": start, "until": stop, **filters}


# -- feedback ---------------------------------------------------------------------------------

MAX_CORRECTION_CHARS = 20_000
MAX_COMMENT_CHARS = 2_000
THUMBS = {"up": 1, "down": 0}


def _feedback_text(value: Any, field: str, most: int) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise invalid(field, f"expected a string, got {type(value).__name__}")
    if not value.strip() or "\x00" in value:
        raise invalid(field, "expected text without NUL bytes (leave it out for none)")
    if len(value) > most:
        raise invalid(field, f"at most {most:,} characters, got {len(value):,}")
    return value


def validate_rating(
    *, thumb: Any = None, stars: Any = None, correction: Any = None, comment: Any = None
) -> Rating:
    """A rating, checked: exactly one of ``thumb`` (``up`` | ``down``) and ``stars``
    (1-5), an optional correction (what the answer should have been) and comment.

    Raises:
        InvalidRequest: naming the field.
    """
    from crewchief.db.feedback import Rating

    if (thumb is None) == (stars is None):
        raise invalid("thumb", "give one rating: thumb (up or down) or stars (1 to 5)")
    if thumb is not None:
        if thumb not in THUMBS:
            raise invalid("thumb", f"expected up or down, got {thumb!r}")
        kind, value = "thumb", THUMBS[thumb]
    else:
        if isinstance(stars, bool) or not isinstance(stars, int) or not 1 <= stars <= 5:
            raise invalid("stars", f"expected a whole number from 1 to 5, got {stars!r}")
        kind, value = "stars", stars
    return Rating(
        kind,
        value,
        _feedback_text(correction, "correction", MAX_CORRECTION_CHARS),
        _feedback_text(comment, "comment", MAX_COMMENT_CHARS),
    )


def _ident(value: Any, field: str) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= 64 or "\x00" in value:
        raise invalid(field, f"expected an id of 1 to 64 characters, got {value!r}")
    return value


def _positive(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
        raise invalid(field, f"expected a whole number from 1, got {value!r}")
    return value


def feedback_target(
    *, operation_id: Any = None, task: Any = None, version: Any = None, response_id: Any = None
) -> Target:
    """What a rating is about: an operation, one of its tasks (``version``: the current
    one by default), or a gateway response (its ``x_crewchief.id``).

    Raises:
        InvalidRequest: naming the argument.
    """
    from crewchief.db.feedback import Target

    if (operation_id is None) == (response_id is None):
        raise invalid("operation_id", "rate an operation (and a task of it) or a response")
    if response_id is not None:
        if task is not None or version is not None:
            raise invalid("task", "a response has no tasks")
        return Target("response", response_id=_ident(response_id, "response_id"))
    op = _ident(operation_id, "operation_id")
    if task is None:
        if version is not None:
            raise invalid("version", "a version is a task's: give the task too")
        return Target("operation", operation_id=op)
    version = None if version is None else _positive(version, "version")
    return Target("task", operation_id=op, sequence=_positive(task, "task"), version=version)


def validate_feedback_query(
    *, by: Any = None, since: Any = None, until: Any = None, kind: Any = None
) -> dict[str, Any]:
    """The checked arguments of a feedback listing, summary or export.

    Raises:
        InvalidRequest: naming the field and what was expected.
    """
    now = datetime.now(UTC)
    start = usage_time(since, "since", now=now)
    stop = usage_time(until, "until", end=True, now=now)
    if start is not None and stop is not None and stop <= start:
        raise invalid("until", f"expected a time after since ({start.isoformat()})")
    if by is not None and by not in FEEDBACK_GROUPS:
        raise invalid(
            "by", f"unknown grouping {by!r}; expected one of {', '.join(FEEDBACK_GROUPS)}"
        )
    if kind is not None and kind not in FEEDBACK_TARGETS:
        raise invalid("kind", f"expected one of {', '.join(FEEDBACK_TARGETS)}, got {kind!r}")
    return {"by": by, "since": start, "until": stop, "kind": kind}
