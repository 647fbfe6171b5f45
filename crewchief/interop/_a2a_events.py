"""An operation's stored events in order, from a point on: what is stored, then live.

Wherever the operation runs (this process, another instance, a worker), its events are
stored before they are published. The subscription is opened before the database is
read, so nothing falls between the two; a gap in the live ``seq`` numbers, a
:class:`~crewchief.events.Notice` or a quiet spell is filled from the database.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from crewchief.events import Event, Notice
from crewchief.interop._a2a_mapping import StoredEvent, ended

if TYPE_CHECKING:
    from crewchief.client.facade import Crewchief

# With nothing on the bus for this long, the database is read again (a lost notice
# costs at most this much delay, never a hang).
QUIET_SECONDS = 5.0


def _stored(record: Any) -> StoredEvent:
    return StoredEvent(record.seq, str(record.type), dict(record.payload), record.created_at)


async def follow(
    chief: Crewchief, operation_id: str, *, after: int = 0
) -> AsyncIterator[StoredEvent]:
    """The operation's stored events with ``seq > after``, stored ones first, then as they
    happen, until one after which a client stops (the end, or a plan waiting for a
    decision; see :func:`~crewchief.interop._a2a_mapping.ended`)."""
    sub = chief.subscribe(operation_id)
    last = after
    try:
        while True:
            for record in await chief.stored_events(operation_id, after=last):
                event = _stored(record)
                last = event.seq
                yield event
                if ended(event):
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
                if ended(event):
                    return
    finally:
        sub.close()


async def newest_seq(chief: Crewchief, operation_id: str) -> int:
    """The ``seq`` of the operation's newest stored event (0: none or unknown)."""
    found = await chief.replay(operation_id, after=2**31 - 1)
    return found.last_seq if found is not None else 0
