"""Server-sent events of one operation: replay from the database, then live, no gap, no repeat.

Each stored event is sent as ``id: <seq>``, ``event: <type>``, ``data: <json>``.
Token deltas (``model.delta``) have no id: they are live only. A comment line
is sent when the stream was quiet for ``heartbeat`` seconds. After the
operation's terminal event the stream ends.

No gap: the subscription to live events is opened *before* the database is
read, so an event is either in the read or arrives on the subscription (or
both). No repeat: live events with a seq already sent are dropped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from crewchief.db import repository
from crewchief.events import TERMINAL_EVENTS, Event, EventBus

RETRY_MS = 2000


def frame(seq: int | None, type_: str, data: dict[str, Any]) -> bytes:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {type_}\ndata: {body}\n\n".encode()


def _event_data(event: Event) -> dict[str, Any]:
    return {
        "operation_id": event.operation_id,
        "seq": event.seq,
        "type": str(event.type),
        "payload": event.payload,
        "created_at": event.created_at.isoformat(),
    }


async def event_stream(
    store: Any,
    bus: EventBus,
    operation_id: str,
    *,
    after: int,
    heartbeat: float,
    deltas: bool = True,
    subscription: Any = None,
) -> AsyncIterator[bytes]:
    """The SSE byte stream of an operation's events with ``seq > after``.

    Args:
        subscription: An already opened bus subscription (opened before any
            database read the caller made); one is opened when None.
    """
    sub = subscription or bus.subscribe(operation_id)
    try:
        yield f"retry: {RETRY_MS}\n\n".encode()
        last = after
        stored = await repository.list_events(store, operation_id, after_seq=after)
        for record in stored:
            yield frame(
                record.seq,
                record.type,
                {
                    "operation_id": operation_id,
                    "seq": record.seq,
                    "type": record.type,
                    "payload": record.payload,
                    "created_at": record.created_at.isoformat(),
                },
            )
            last = record.seq
        queue = sub.queue
        # Events that arrived while the database was read: drop the ones already sent.
        pending = [queue.get_nowait() for _ in range(queue.qsize())]
        pending = [e for e in pending if e.seq is None or e.seq > last]
        if stored and stored[-1].type in TERMINAL_EVENTS and all(e.seq is None for e in pending):
            return  # the operation had ended and nothing newer has started
        while True:
            if pending:
                event = pending.pop(0)
            else:
                try:
                    event = await asyncio.wait_for(queue.get(), heartbeat)
                except TimeoutError:
                    yield b": keep-alive\n\n"
                    continue
            if event.seq is None:
                if deltas:
                    yield frame(None, str(event.type), _event_data(event))
                continue
            if event.seq <= last:
                continue
            yield frame(event.seq, str(event.type), _event_data(event))
            last = event.seq
            if event.terminal:
                return
    finally:
        sub.close()
