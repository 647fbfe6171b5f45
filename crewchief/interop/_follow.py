"""An operation's stored events in order, from a point on: what is stored, then live.

Used by the A2A agent (a task's updates) and the MCP server (a wait's progress).

Wherever the operation runs (this process, another instance, a worker), its events are
stored before they are published. The subscription is opened before the database is
read, so nothing falls between the two; a gap in the live ``seq`` numbers, a
:class:`~crewchief.events.Notice` or a quiet spell is filled from the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from crewchief.events import Event, Notice

if TYPE_CHECKING:
    from crewchief.client.facade import Crewchief

# With nothing on the bus for this long, the database is read again (a lost notice
# costs at most this much delay, never a hang).
QUIET_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A stored event of an operation, wherever it was read from (database or bus)."""

    seq: int
    type: str
    payload: dict[str, Any]
    created_at: datetime


def _stored(record: Any) -> StoredEvent:
    return StoredEvent(record.seq, str(record.type), dict(record.payload), record.created_at)


async def follow(
    chief: Crewchief,
    operation_id: str,
    *,
    after: int = 0,
    until: Callable[[StoredEvent], bool],
) -> AsyncIterator[StoredEvent]:
    """The operation's stored events with ``seq > after``, stored ones first, then as they
    happen, up to and including the first for which ``until`` is true."""
    sub = chief.subscribe(operation_id)
    last = after
    try:
        while True:
            for record in await chief.stored_events(operation_id, after=last):
                event = _stored(record)
                last = event.seq
                yield event
                if until(event):
                    return
            # Live events in order until one is missing (then the database has it).
            while True:
                try:
                    async with asyncio.timeout(QUIET_SECONDS):
                        item = await sub.queue.get()
                except TimeoutError:
                    break
                if isinstance(item, Notice):
                    if item.seq > last:
                        break
                    continue
                if not isinstance(item, Event) or item.seq is None or item.seq <= last:
                    continue  # a token delta, or already sent
                if item.seq > last + 1:
                    break
                event = _stored(item)
                last = event.seq
                yield event
                if until(event):
                    return
    finally:
        sub.close()


async def newest_seq(chief: Crewchief, operation_id: str) -> int:
    """The ``seq`` of the operation's newest stored event (0: none or unknown)."""
    found = await chief.replay(operation_id, after=2**31 - 1)
    return found.last_seq if found is not None else 0
