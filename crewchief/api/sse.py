"""Server-sent events of one operation: replay from the database, then live, no gap, no repeat.

Each stored event is sent as ``id: <seq>``, ``event: <type>``, ``data: <json>``.
Token deltas (``model.delta``) have no id: they are live only. A comment line
is sent when nothing was written for ``heartbeat`` seconds (token deltas left
out with ``deltas=False`` do not count). After the operation's terminal event
the stream ends.

No gap: the subscription to live events is opened *before* the database is
read, so an event is either in the read or arrives on the subscription (or
both). Events are stored before they are published, so when a live event skips
a seq (a message lost between processes) or a :class:`~crewchief.events.Notice`
says the database holds more (written by a process whose events do not reach
this one), the missing events are read from the database. No repeat: events
with a seq already sent are dropped.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from crewchief import metrics
from crewchief.events import TERMINAL_EVENTS, Event, Notice, Subscription

if TYPE_CHECKING:
    from crewchief.db.repository import Replay

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

    async def replay(self, operation_id: str, *, after: int = 0) -> Replay | None:
        """Owner, status, stored events after ``after`` and the newest event, in one read;
        None for an unknown operation."""
        ...


@dataclass
class Opened:
    """A stream's start, taken before its response begins: the live subscription, opened
    first, then the read of what is stored (see :func:`open_stream`)."""

    sub: Subscription
    replay: Replay


async def open_stream(
    source: EventSource, operation_id: str, *, after: int, deltas: bool = True
) -> Opened | None:
    """Subscribe to the operation's live events, then read what is stored; None (and
    nothing left open) for an unknown operation."""
    sub = source.subscribe(operation_id)
    try:
        found = await source.replay(operation_id, after=after)
    except BaseException:
        sub.close()
        raise
    if found is None:
        sub.close()
        return None
    if deltas:
        sub.watch()  # runners elsewhere publish its token deltas while somebody watches
    return Opened(sub, found)


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
    opened: Opened | None = None,
) -> AsyncIterator[bytes]:
    """The SSE byte stream of an operation's events with ``seq > after``.

    ``opened``: the stream's start, taken already (:func:`open_stream`); without it the
    stream opens it on its first iteration. The subscription is closed when the stream
    ends or the client goes away.
    """
    if opened is None:
        opened = await open_stream(source, operation_id, after=after, deltas=deltas)
        if opened is None:
            return
    sub, stored = opened.sub, opened.replay
    clients = metrics.get().sse_clients
    clients.inc()
    try:
        last = after
        events = stored.events
        # The replay goes out as one write: a client resuming far back gets it in one go.
        head = [f"retry: {RETRY_MS}\n\n".encode()]
        head += [frame(r.seq, r.type, _record_data(operation_id, r)) for r in events]
        yield b"".join(head)
        if events:
            last = events[-1].seq
        queue = sub.queue
        # Events that arrived while the database was read (some already sent above).
        pending = deque(queue.get_nowait() for _ in range(queue.qsize()))
        if _ended(stored, last, pending):
            return  # the operation had ended and nothing newer has started
        follower = _Follower(source, operation_id, last, stored.last_seq, deltas)
        async for chunk in _live(follower, queue, pending, heartbeat):
            yield chunk
    finally:
        clients.dec()
        sub.close()


def _ended(stored: Replay, last: int, pending: deque[Event | Notice]) -> bool:
    """Whether the operation's newest event is terminal and was sent (or resumed past)."""
    if any(e.seq is not None and e.seq > last for e in pending):
        return False
    return stored.last_type in TERMINAL_EVENTS and stored.last_seq <= last


class _Follower:
    """Turns live items into frames, in seq order, reading what is missing from the database."""

    def __init__(
        self, source: EventSource, operation_id: str, last: int, newest: int, deltas: bool
    ):
        self.source = source
        self.operation_id = operation_id
        self.last = last  # the highest seq sent (or resumed from)
        self.newest = newest  # the highest seq known to exist
        self.deltas = deltas

    async def frames(self, item: Event | Notice) -> tuple[list[bytes], bool]:
        """The frames for one queued item, and whether the stream has ended.

        A terminal event at or below ``last`` that is the newest event still ends
        the stream: the client resumed past the end.
        """
        if isinstance(item, Notice):
            return await self._backfill() if item.seq > self.last else ([], False)
        if item.seq is None:
            return ([_event_frame(item)] if self.deltas else []), False
        if item.seq <= self.last:
            ended = item.terminal and item.seq >= self.newest
            self.newest = max(self.newest, item.seq)
            return [], ended
        if item.seq > self.last + 1:
            return await self._backfill()  # stored before published: the database has it
        self.last = self.newest = item.seq
        return [_event_frame(item)], item.terminal

    async def _backfill(self) -> tuple[list[bytes], bool]:
        records = await self.source.stored_events(self.operation_id, after=self.last)
        out = [frame(r.seq, r.type, _record_data(self.operation_id, r)) for r in records]
        if not records:
            return [], False
        self.last = self.newest = max(self.newest, records[-1].seq)
        return out, records[-1].type in TERMINAL_EVENTS


async def _live(
    follower: _Follower,
    queue: asyncio.Queue[Event | Notice],
    pending: deque[Event | Notice],
    heartbeat: float,
) -> AsyncIterator[bytes]:
    """Live events until the terminal one, a keep-alive comment after ``heartbeat`` idle seconds."""
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
            frames, ended = await follower.frames(pending.popleft())
            out += frames
        if out:
            yield b"".join(out)
            wrote = loop.time()
        if ended:
            return
