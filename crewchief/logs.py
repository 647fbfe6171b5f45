"""Log lines: human text on a terminal, or one JSON object per line for log pipelines.

``log_format = "json"`` (``CREWCHIEF_LOG_FORMAT=json``) makes every line of a
process (crewchief's, uvicorn's, procrastinate's) one JSON object::

    {"time": "2026-12-06T10:01:02.345Z", "level": "INFO", "logger": "crewchief.executor",
     "message": "...", "request_id": "...", "operation_id": "op_...", "task_id": 3,
     "worker": "host:123:ab12"}

``request_id``, ``operation_id`` and ``task_id`` come from where the line is
written: a request's id (its ``X-Request-ID`` header, or a new one, echoed in
the response) follows the request and the operation it starts; an operation's
run and each of its tasks set theirs. ``worker`` names the worker process. In
text mode the same context is appended as ``[op=… task=…]``.
"""

from __future__ import annotations

import logging
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

request_id: ContextVar[str | None] = ContextVar("crewchief_request_id", default=None)
operation_id: ContextVar[str | None] = ContextVar("crewchief_operation_id", default=None)
task_id: ContextVar[int | None] = ContextVar("crewchief_task_id", default=None)

FORMATS = ("text", "json")
# Libraries whose INFO lines say nothing an operator needs (one per job deferred, ...).
_QUIET = ("procrastinate", "alembic.runtime.plugins")
_CONTEXT = ("request_id", "operation_id", "task_id", "worker")
_TEXT = "%(asctime)s %(levelname)s %(name)s: %(message)s%(context)s"
_SHORT = {"request_id": "req", "operation_id": "op", "task_id": "task", "worker": "worker"}


class ContextFilter(logging.Filter):
    """Puts the context of the line (request, operation, task, worker) on the record."""

    def __init__(self, worker: str | None = None):
        super().__init__()
        self.worker = worker

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        record.operation_id = operation_id.get()
        record.task_id = task_id.get()
        record.worker = self.worker
        parts = [f"{_SHORT[k]}={getattr(record, k)}" for k in _CONTEXT if getattr(record, k)]
        record.context = f" [{' '.join(parts)}]" if parts else ""
        return True


def _json_formatter() -> logging.Formatter:
    from pythonjsonlogger.json import JsonFormatter

    class Formatter(JsonFormatter):
        def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
            stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            return stamp.replace("+00:00", "Z")

        def process_log_record(self, log_record: dict[str, Any]) -> dict[str, Any]:
            log_record.pop("context", None)
            return {k: v for k, v in log_record.items() if v is not None}

    return Formatter(
        "{asctime}{levelname}{name}{message}",
        style="{",
        rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        # Everything else on a record is left out, except the context above.
        reserved_attrs=_reserved(),
    )


def _reserved() -> list[str]:
    from pythonjsonlogger.core import RESERVED_ATTRS

    return [*RESERVED_ATTRS, "color_message"]


def configure(level: str | int = "info", fmt: str = "text", *, worker: str | None = None) -> None:
    """Send every logger's lines to stderr in ``fmt`` ("text" or "json") from ``level`` up."""
    if fmt not in FORMATS:
        raise ValueError(f"log_format: expected one of {', '.join(FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(ContextFilter(worker))
    if fmt == "json":
        formatter = _json_formatter()
    else:
        formatter = logging.Formatter(_TEXT)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    for name in _QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)


def set_worker(name: str) -> None:
    """Name the worker process in every line from now on."""
    for handler in logging.getLogger().handlers:
        for f in handler.filters:
            if isinstance(f, ContextFilter):
                f.worker = name
