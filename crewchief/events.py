"""Operation events and the in-process event bus.

Persistent events carry ``seq`` (1, 2, 3... per operation, the SSE id); transient
ones (``model.delta`` token deltas) have ``seq=None`` and are only published.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class EventType(StrEnum):
    OPERATION_STARTED = "operation.started"
    OPERATION_RESUMED = "operation.resumed"
    ROUTE_DECIDED = "route.decided"
    FAST_PATH_FAILED = "fast_path.failed"
    PLAN_TOOL_CALLED = "plan.tool_called"
    PLAN_CONTEXT = "plan.context"
    PLAN_INVALID = "plan.invalid"
    PLAN_GENERATED = "plan.generated"
    PLAN_AWAITING_APPROVAL = "plan.awaiting_approval"
    PLAN_REVIEWED = "plan.reviewed"
    TASK_CREATED = "task.created"
    TASK_STARTED = "task.started"
    TASK_SKILL_ACTIVATED = "task.skill_activated"
    TASK_TOOL_CALLED = "task.tool_called"
    TASK_COMPLETED = "task.completed"
    TASK_FAILED = "task.failed"
    TASK_RERUN = "task.rerun"
    OPERATION_COMPLETED = "operation.completed"
    OPERATION_FAILED = "operation.failed"
    OPERATION_CANCELLED = "operation.cancelled"
    OPERATION_REJECTED = "operation.rejected"
    BUDGET_WARNING = "budget.warning"
    BUDGET_DOWNGRADED = "budget.downgraded"
    MODEL_DELTA = "model.delta"


TERMINAL_EVENTS = frozenset(
    {
        EventType.OPERATION_COMPLETED,
        EventType.OPERATION_FAILED,
        EventType.OPERATION_CANCELLED,
        EventType.OPERATION_REJECTED,
    }
)


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened to an operation."""

    operation_id: str
    type: EventType
    payload: dict[str, Any] = field(default_factory=dict)
    seq: int | None = None
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def terminal(self) -> bool:
        return self.type in TERMINAL_EVENTS

    def to_dict(self) -> dict[str, Any]:
        return {
            "operation_id": self.operation_id,
            "seq": self.seq,
            "type": str(self.type),
            "payload": self.payload,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Notice:
    """Stored events of an operation go up to ``seq``, some maybe written by another process.

    A subscriber that has sent less reads the rest from the database.
    """

    operation_id: str
    seq: int


class Subscription:
    """Events of one operation (or all, when ``operation_id`` is None) as they happen.

    The queue holds :class:`Event` items and, for an operation, :class:`Notice` items
    saying that more was stored than this process published (iterating skips those).
    """

    def __init__(self, bus: EventBus, operation_id: str | None):
        self._bus = bus
        self.operation_id = operation_id
        self.queue: asyncio.Queue[Event | Notice] = asyncio.Queue()
        self.watching = False

    def watch(self) -> None:
        """Ask for the operation's token deltas wherever it runs (a client streams it).

        Runners in other processes publish an operation's deltas only while somebody
        watches it; following its stored events needs no watch.
        """
        if not self.watching and self.operation_id is not None:
            self.watching = True
            self._bus._watch_now(self.operation_id)

    def close(self) -> None:
        self._bus._unsubscribe(self)

    def __aiter__(self) -> AsyncIterator[Event]:
        return self._iter()

    async def _iter(self) -> AsyncIterator[Event]:
        while True:
            item = await self.queue.get()
            if isinstance(item, Event):
                yield item


class EventBus:
    """In-process fan-out. Publishing never blocks; each subscriber has its own queue.

    The bus remembers, for each operation somebody follows, the highest stored
    ``seq`` it delivered, so that a poller can tell when the database holds more
    (events written by another process) and :meth:`notify` the followers.
    """

    # Whether events published by other processes reach this bus (a Redis bus, while connected).
    cross_process = False

    def __init__(self) -> None:
        self._subs: dict[str | None, set[Subscription]] = defaultdict(set)
        self._seen: dict[str, int] = {}

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def subscribe(self, operation_id: str | None = None) -> Subscription:
        sub = Subscription(self, operation_id)
        self._subs[operation_id].add(sub)
        return sub

    def _unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.operation_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.operation_id]
                if sub.operation_id is not None:
                    self._seen.pop(sub.operation_id, None)

    def publish(self, event: Event) -> None:
        """Deliver an event to this process's subscribers."""
        self._deliver(event)

    def _deliver(self, event: Event) -> None:
        op = event.operation_id
        if event.seq is not None and op in self._subs:
            self._seen[op] = max(self._seen.get(op, 0), event.seq)
        for key in (op, None):
            for sub in self._subs.get(key, ()):
                sub.queue.put_nowait(event)

    def has_subscribers(self, operation_id: str) -> bool:
        return bool(self._subs.get(operation_id) or self._subs.get(None))

    def followed(self) -> list[str]:
        """The operations somebody in this process follows."""
        return [op for op in self._subs if op is not None]

    def watched(self) -> list[str]:
        """The operations whose token deltas somebody in this process wants (see watch)."""
        return [op for op, subs in self._subs.items() if op and any(s.watching for s in subs)]

    def _watch_now(self, operation_id: str) -> None:
        """Tell runners elsewhere that deltas are wanted (in-process: they always are)."""
        return None

    def seen(self, operation_id: str) -> int:
        """The highest stored seq delivered for an operation since it was first followed."""
        return self._seen.get(operation_id, 0)

    def notify(self, operation_id: str, seq: int) -> None:
        """Tell the operation's followers that stored events go up to ``seq``."""
        if seq <= self._seen.get(operation_id, 0) or operation_id not in self._subs:
            return
        self._seen[operation_id] = seq
        for sub in self._subs[operation_id]:
            sub.queue.put_nowait(Notice(operation_id, seq))
