"""Waiting for an operation with progress: its stored events, followed until it ends, its
plan awaits approval, or the time is up.

Progress is counted in tasks: ``progress`` is how many of the plan's tasks ended
(completed, failed or cancelled), ``total`` how many the plan has (unknown before the plan
and on the fast route), ``message`` what just happened (a task's active form, "plan awaits
approval"). Progress never goes down within one wait, as the protocol asks.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from crewchief.events import EventType
from crewchief.interop._follow import StoredEvent, follow
from crewchief.results import TERMINAL_STATUSES, OperationResult

if TYPE_CHECKING:
    from crewchief.client.facade import Crewchief

Report = Callable[[float, float | None, str], Awaitable[None]]

# Longest wait one call may ask for: an HTTP response held open longer is likely cut by a proxy.
MAX_WAIT_S = 300.0
_ENDED_TASK = ("completed", "failed", "cancelled")


class _Tracker:
    """What the events say so far: the plan's tasks and which of them ended."""

    def __init__(self, current: OperationResult):
        self.descriptions = {t.sequence: t.description for t in current.tasks}
        self.ended = {t.sequence for t in current.tasks if t.status in _ENDED_TASK}
        self.shown = float(len(self.ended))

    @property
    def total(self) -> float | None:
        return float(len(self.descriptions)) if self.descriptions else None

    @property
    def progress(self) -> float:
        self.shown = max(self.shown, float(len(self.ended)))
        return self.shown

    def _plan(self, tasks: list[dict[str, Any]]) -> None:
        if tasks:
            self.descriptions = {t["id"]: t.get("description", "") for t in tasks}
            self.ended = set()

    def apply(self, type_: str, p: dict[str, Any]) -> str | None:
        """Take one stored event in; what to tell the client (None: nothing worth a message)."""
        seq = p.get("sequence")
        if type_ == EventType.ROUTE_DECIDED:
            return f"route: {p.get('route')} ({'forced' if p.get('forced') else 'detected'})"
        if type_ == EventType.PLAN_GENERATED:
            self._plan(p.get("tasks") or [])
            return f"plan ready: {len(self.descriptions)} tasks"
        if type_ == EventType.PLAN_AWAITING_APPROVAL:
            self._plan(p.get("tasks") or [])
            return "plan awaits approval: call review_plan"
        if type_ == EventType.PLAN_REVIEWED:
            return f"plan reviewed: {p.get('action')}"
        if type_ == EventType.TASK_STARTED:
            return f"task {seq}: {p.get('active_form')}"
        if type_ == EventType.TASK_COMPLETED:
            self.ended.add(seq)
            return f"task {seq} done: {self.descriptions.get(seq, '')}".rstrip(": ")
        if type_ == EventType.TASK_FAILED:
            self.ended.add(seq)
            return f"task {seq} failed: {p.get('error')}"
        if type_ == EventType.TASK_RERUN:
            self.ended -= {seq, *(p.get("dependents") or [])}
            return f"re-running task {seq}"
        if type_ == EventType.FAST_PATH_FAILED:
            return "fast path failed: planning instead"
        if type_ == EventType.BUDGET_WARNING:
            return "budget warning: " + str(p.get("message") or p.get("scope") or "")
        if type_ in (
            EventType.OPERATION_COMPLETED,
            EventType.OPERATION_FAILED,
            EventType.OPERATION_CANCELLED,
            EventType.OPERATION_REJECTED,
        ):
            return f"operation {type_.rpartition('.')[2]}"
        return None


def describe(current: OperationResult) -> str:
    """The state of an operation in a few words (the first progress message of a wait)."""
    if current.status == "awaiting_approval":
        return "plan awaits approval: call review_plan"
    if current.status != "running":
        return f"operation {current.status}"
    running = [t for t in current.tasks if t.status == "in_progress"]
    if running:
        return "; ".join(f"task {t.sequence}: {t.active_form}" for t in running)
    if current.route == "plan" and not current.tasks:
        return "planning"
    if current.route == "fast":
        return "answering (fast route)"
    return "running"


def settled(status: str) -> str | None:
    """Why a wait stops at this status (None: it goes on)."""
    if status in TERMINAL_STATUSES:
        return "ended"
    if status == "awaiting_approval":
        return "awaiting_approval"
    return None


async def wait(
    chief: Crewchief, operation_id: str, scope: dict[str, Any], seconds: float, report: Report
) -> tuple[OperationResult, str]:
    """Follow an operation until it settles or ``seconds`` pass; the operation then,
    and why the wait stopped (``ended``, ``awaiting_approval`` or ``timeout``).

    Raises:
        OperationNotFound: unknown id, or another owner's.
    """
    stored = await chief.stored_events(operation_id)
    # Read after the events, so the first message says what runs now; what it already
    # shows is read again below at worst.
    current = await chief.get(operation_id, **scope)
    tracker = _Tracker(current)
    # What came before the wait: a plan that awaits approval has no task rows yet, but
    # its events say how many tasks it has.
    for record in stored:
        tracker.apply(record.type, record.payload)
    await report(tracker.progress, tracker.total, describe(current))
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(max(seconds, 0.0), MAX_WAIT_S)
    last = stored[-1].seq if stored else 0
    # Followed again when a settling event's status has already moved on (a plan approved
    # at once); follow subscribes before it reads what came after ``last``: nothing is missed.
    while settled(current.status) is None and loop.time() < deadline:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout_at(deadline):
                async for event in follow(chief, operation_id, after=last, until=_settles):
                    last = event.seq
                    message = tracker.apply(event.type, event.payload)
                    if message is not None:
                        await report(tracker.progress, tracker.total, message)
        current = await chief.get(operation_id, **scope)
    return current, settled(current.status) or "timeout"


def _settles(event: StoredEvent) -> bool:
    """Whether the operation may have settled with this event (its status then says)."""
    return event.type in (
        EventType.PLAN_AWAITING_APPROVAL,
        EventType.OPERATION_COMPLETED,
        EventType.OPERATION_FAILED,
        EventType.OPERATION_CANCELLED,
        EventType.OPERATION_REJECTED,
    )
