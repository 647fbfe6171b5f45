"""Server-sent events of one operation: replay from the database, then live, no gap, no repeat.

Each stored event is sent as ``id: <seq>``, ``event: <type>``, ``data: <json>``.
Token deltas (``model.delta``) have no id: they are live only. A comment line
is sent when nothing was written for ``heartbeat`` seconds (token deltas left
out with ``deltas=False`` do not count). After the operation's terminal event
the stream ends.

No gap: the subscription to live events is opened *before* the database is
read, so an event is either in the read or arrives on the subscription (or
both). No repeat: live events with a seq already sent are dropped.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from typing import Any, Protocol

from crewchief.events import TERMINAL_EVENTS, Event, Subscription

RETRY_MS = 2000
KEEP_ALIVE = b": keep-alive\n\n"


class EventSource(Protocol):
    """Where an operation's events come from: :class:`crewchief.Crewchief` is one."""

    def subscribe(self, operation_id: str) -> Subscription:
        """Live events from now on (has ``queue`` and ``close()``)."""
        ...

    async def stored_events(self, operation_id: str, *, after: int = 0) -> list[Any]:
        """Stored events with ``seq > after``, in order."""
        ...

    async def event_head(self, operation_id: str) -> tuple[Any, str, int, str | None] | None:
        """``(owner, status, last seq, last event type)``, or None for an unknown operation."""
        ...


def frame(seq: int | None, type_: str, data: dict[str, Any]) -> bytes:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False, default=str)
    head = f"id: {seq}\n" if seq is not None else ""
    return f"{head}event: {type_}\ndata: {body}\n\n".encode()


def _event_frame(event: Event) -> bytes:
    return frame(event.seq, str(event.type), event.to_dict())


def _record_data(operation_id: str, record: Any) -> dict[str, Any]:
    return {
        "operation_id": operation_id,
        "seq": record.seq,
        "type": record.type,
        "payload": record.payload,
        "created_at": record.created_at.isoformat(),
    }


async def event_stream(
    source: EventSource,
    operation_id: str,
    *,
    after: int,
    heartbeat: float,
    deltas: bool = True,
) -> AsyncIterator[bytes]:
    """The SSE byte stream of an operation's events with ``seq > after``.

    The live subscription is opened on the first iteration, before the stored
    events are read, and closed when the stream ends or the client goes away.
    """
    sub = source.subscribe(operation_id)
    try:
        last = after
        stored = await source.stored_events(operation_id, after=after)
        # The replay goes out as one write: a client resuming far back gets it in one go.
        head = [f"retry: {RETRY_MS}\n\n".encode()]
        head += [frame(r.seq, r.type, _record_data(operation_id, r)) for r in stored]
        yield b"".join(head)
        if stored:
            last = stored[-1].seq
        queue = sub.queue
        # Events that arrived while the database was read (some already sent above).
        pending = deque(queue.get_nowait() for _ in range(queue.qsize()))
        if await _ended(source, operation_id, stored, last, pending):
            return  # the operation had ended and nothing newer has started
        newest = stored[-1].seq if stored else 0
        async for chunk in _live(queue, pending, last, newest, heartbeat, deltas):
            yield chunk
    finally:
        sub.close()


async def _ended(
    source: EventSource, operation_id: str, stored: list[Any], last: int, pending: deque[Event]
) -> bool:
    """Whether the operation's newest event is terminal and was sent (or resumed past)."""
    if any(e.seq is not None and e.seq > last for e in pending):
        return False
    if stored:
        return stored[-1].type in TERMINAL_EVENTS
    # Nothing after ``last`` was stored: it may have ended before the subscription opened.
    head = await source.event_head(operation_id)
    return head is not None and head[3] in TERMINAL_EVENTS and head[2] <= last


async def _live(
    queue: asyncio.Queue[Event],
    pending: deque[Event],
    last: int,
    newest: int,
    heartbeat: float,
    deltas: bool,
) -> AsyncIterator[bytes]:
    """Live events until the terminal one.

    ``last`` is the highest seq sent (or resumed from); ``newest`` the highest
    seq known to exist. A terminal event at or below ``last`` that is the
    newest event still ends the stream: the client resumed past the end.
    """
    loop = asyncio.get_running_loop()
    wrote = loop.time()
    while True:
        if not pending and queue.empty():
            try:
                async with asyncio.timeout(wrote + heartbeat - loop.time()):
                    pending.append(await queue.get())
            except TimeoutError:
                yield KEEP_ALIVE
                wrote = loop.time()
                continue
        # Everything already queued goes out in one write.
        while not queue.empty():
            pending.append(queue.get_nowait())
        out: list[bytes] = []
        ended = False
        while pending and not ended:
            event = pending.popleft()
            if event.seq is None:
                if deltas:
                    out.append(_event_frame(event))
                continue
            if event.seq <= last:
                ended = event.terminal and event.seq >= newest
                newest = max(newest, event.seq)
                continue
            out.append(_event_frame(event))
            last = newest = event.seq
            ended = event.terminal
        if out:
            yield b"".join(out)
            wrote = loop.time()
        if ended:
            return
