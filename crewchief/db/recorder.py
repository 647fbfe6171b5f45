"""Where operation state is saved: every write pairs a row change with its event.

Each method runs one transaction that updates rows and appends the matching
event, then publishes the event on the bus. Events carry an idempotency key
(``task.started:3``), so a node that re-runs after a crash records nothing
twice, and per-operation sequence numbers stay gap-free.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from crewchief.db.models import ModelCall, Operation, OperationEvent, OperationTask, utcnow
from crewchief.db.session import Database
from crewchief.events import Event, EventBus, EventType
from crewchief.models.registry import CallInfo, CallRecord, Usage

ACTIVE_TASK_STATUSES = ("pending", "in_progress")
TERMINAL_STATUSES = ("completed", "failed", "cancelled", "rejected")


class Recorder:
    """Persists operations, tasks, events and model usage; publishes events."""

    def __init__(self, db: Database, bus: EventBus):
        self.db = db
        self.bus = bus
        self._locks: dict[str, asyncio.Lock] = defaultdict(asyncio.Lock)
        self._insert = sqlite_insert if db.is_sqlite else pg_insert

    # -- events -------------------------------------------------------------------------

    async def _append(
        self, s: AsyncSession, op: str, type_: EventType, payload: dict[str, Any], key: str
    ) -> Event | None:
        last = await s.scalar(
            select(func.max(OperationEvent.seq)).where(OperationEvent.operation_id == op)
        )
        now = utcnow()
        stmt = (
            self._insert(OperationEvent)
            .values(
                operation_id=op,
                seq=(last or 0) + 1,
                key=key,
                type=str(type_),
                payload=payload,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["operation_id", "key"])
        )
        result = await s.execute(stmt)
        if result.rowcount == 0:
            return None
        return Event(op, type_, payload, (last or 0) + 1, now)

    async def _write(
        self, op: str, work, *events: tuple[EventType, dict[str, Any], str]
    ) -> list[Event]:  # noqa: ANN001
        """Run ``work(session)`` and append ``events`` in one transaction, then publish."""
        for attempt in range(5):
            try:
                async with self._locks[op], self.db.sessions.begin() as s:
                    if work is not None:
                        await work(s)
                    written = [e for e in [await self._append(s, op, *ev) for ev in events] if e]
                break
            except IntegrityError:
                # Another process took the same seq; try again with a fresh max().
                if attempt == 4:
                    raise
                await asyncio.sleep(0.01 * (attempt + 1))
        for event in written:
            self.bus.publish(event)
        return written

    def delta(self, info: CallInfo, text: str) -> None:
        """Publish a token delta (transient: never stored, no seq)."""
        if info.operation_id and self.bus.has_subscribers(info.operation_id):
            payload = {"node": info.node, "task": info.task, "text": text}
            self.bus.publish(Event(info.operation_id, EventType.MODEL_DELTA, payload))

    async def on_delta(self, info: CallInfo, text: str) -> None:
        self.delta(info, text)

    # -- operations ---------------------------------------------------------------------

    async def create_operation(
        self,
        *,
        operation_id: str,
        request: str,
        workspace: str | None,
        route: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        """Insert the operation (status ``running``) unless it exists. True if inserted."""
        now = utcnow()

        async def work(s: AsyncSession) -> None:
            stmt = (
                self._insert(Operation)
                .values(
                    id=operation_id,
                    request=request,
                    workspace=workspace,
                    status="running",
                    route=route,
                    route_forced=route is not None,
                    metadata=metadata,
                    created_at=now,
                    started_at=now,
                    updated_at=now,
                )
                .on_conflict_do_nothing(index_elements=["id"])
            )
            await s.execute(stmt)

        payload = {"request": request, "workspace": workspace, "forced_route": route}
        written = await self._write(
            operation_id, work, (EventType.OPERATION_STARTED, payload, "operation.started")
        )
        return bool(written)

    async def operation_resumed(self, op: str) -> None:
        async def work(s: AsyncSession) -> None:
            await s.execute(
                update(Operation)
                .where(Operation.id == op)
                .values(status="running", error=None, completed_at=None)
            )

        async with self.db.sessions() as s:
            count = await s.scalar(
                select(func.count()).where(
                    OperationEvent.operation_id == op,
                    OperationEvent.type == str(EventType.OPERATION_RESUMED),
                )
            )
        n = (count or 0) + 1
        await self._write(
            op, work, (EventType.OPERATION_RESUMED, {"resume": n}, f"operation.resumed:{n}")
        )

    async def route_decided(
        self, op: str, *, route: str, score: float, reasons: list[str], forced: bool
    ) -> None:
        async def work(s: AsyncSession) -> None:
            await s.execute(
                update(Operation)
                .where(Operation.id == op)
                .values(
                    route=route,
                    route_forced=forced,
                    simplicity_score=score,
                    simplicity_reasons=reasons,
                )
            )

        payload = {"route": route, "score": score, "reasons": reasons, "forced": forced}
        await self._write(op, work, (EventType.ROUTE_DECIDED, payload, "route.decided"))

    async def fast_path_failed(self, op: str, error: str) -> None:
        async def work(s: AsyncSession) -> None:
            await s.execute(update(Operation).where(Operation.id == op).values(route="plan"))

        await self._write(
            op,
            work,
            (EventType.FAST_PATH_FAILED, {"error": error, "fallback": "plan"}, "fast_path.failed"),
        )

    async def plan_invalid(self, op: str, attempt: int, error: str) -> None:
        payload = {"attempt": attempt, "error": error}
        await self._write(op, None, (EventType.PLAN_INVALID, payload, f"plan.invalid:{attempt}"))

    async def plan_generated(
        self, op: str, *, tasks: list[dict[str, Any]], text: str, usage: Usage
    ) -> None:
        """Store the plan and its tasks (``pending``), with one event each."""
        now = utcnow()

        async def work(s: AsyncSession) -> None:
            await s.execute(
                update(Operation)
                .where(Operation.id == op)
                .values(
                    plan_text=text,
                    plan_generated_at=now,
                    planning_input_tokens=usage.input,
                    planning_output_tokens=usage.output,
                    planning_reasoning_tokens=usage.reasoning,
                )
            )
            rows = [
                {
                    "operation_id": op,
                    "sequence": t["id"],
                    "description": t["description"],
                    "active_form": t["active_form"],
                    "skill": t.get("skill"),
                    "depends_on": t.get("depends_on", []),
                    "status": "pending",
                    "created_at": now,
                }
                for t in tasks
            ]
            stmt = self._insert(OperationTask).values(rows)
            await s.execute(
                stmt.on_conflict_do_nothing(index_elements=["operation_id", "sequence"])
            )

        plan_payload = {
            "text": text,
            "tasks": tasks,
            "usage": {"input": usage.input, "output": usage.output, "reasoning": usage.reasoning},
        }
        events = [(EventType.PLAN_GENERATED, plan_payload, "plan.generated")]
        events += [
            (EventType.TASK_CREATED, dict(t, sequence=t["id"]), f"task.created:{t['id']}")
            for t in tasks
        ]
        await self._write(op, work, *events)

    # -- tasks ---------------------------------------------------------------------------

    async def get_task(self, op: str, seq: int) -> OperationTask | None:
        async with self.db.sessions() as s:
            return await s.scalar(
                select(OperationTask).where(
                    OperationTask.operation_id == op, OperationTask.sequence == seq
                )
            )

    async def task_started(self, op: str, seq: int, active_form: str) -> None:
        async def work(s: AsyncSession) -> None:
            await s.execute(
                update(OperationTask)
                .where(OperationTask.operation_id == op, OperationTask.sequence == seq)
                .values(status="in_progress", started_at=utcnow(), error_message=None)
            )

        payload = {"sequence": seq, "active_form": active_form}
        await self._write(op, work, (EventType.TASK_STARTED, payload, f"task.started:{seq}"))

    async def task_completed(
        self, op: str, seq: int, *, result: str, model: str | None, usage: Usage
    ) -> None:
        async def work(s: AsyncSession) -> None:
            await s.execute(
                update(OperationTask)
                .where(OperationTask.operation_id == op, OperationTask.sequence == seq)
                .values(
                    status="completed",
                    result=result,
                    model=model,
                    input_tokens=usage.input,
                    output_tokens=usage.output,
                    reasoning_tokens=usage.reasoning,
                    completed_at=utcnow(),
                )
            )

        payload = {
            "sequence": seq,
            "result": result,
            "model": model,
            "usage": {"input": usage.input, "output": usage.output, "reasoning": usage.reasoning},
        }
        await self._write(op, work, (EventType.TASK_COMPLETED, payload, f"task.completed:{seq}"))

    async def task_failed(self, op: str, seq: int, error: str, *, model: str | None = None) -> None:
        async def work(s: AsyncSession) -> None:
            await s.execute(
                update(OperationTask)
                .where(OperationTask.operation_id == op, OperationTask.sequence == seq)
                .values(status="failed", error_message=error, model=model, completed_at=utcnow())
            )

        await self._write(
            op,
            work,
            (EventType.TASK_FAILED, {"sequence": seq, "error": error}, f"task.failed:{seq}"),
        )

    # -- usage and the end ---------------------------------------------------------------

    async def model_call(self, record: CallRecord) -> None:
        """Append one ledger row (every attempt, including failed ones)."""
        info = record.info
        async with self.db.sessions.begin() as s:
            s.add(
                ModelCall(
                    operation_id=info.operation_id,
                    node=info.node,
                    task_sequence=info.task,
                    alias=record.alias,
                    model=record.model,
                    effort=record.effort,
                    input_tokens=record.usage.input,
                    output_tokens=record.usage.output,
                    reasoning_tokens=record.usage.reasoning,
                    duration_ms=record.duration_ms,
                    error=record.error,
                )
            )

    async def finish(
        self, op: str, status: str, *, answer: str | None = None, error: str | None = None
    ) -> None:
        """End the operation: totals from the ledger, open tasks closed, terminal event."""
        type_ = {
            "completed": EventType.OPERATION_COMPLETED,
            "failed": EventType.OPERATION_FAILED,
            "cancelled": EventType.OPERATION_CANCELLED,
        }[status]
        totals: dict[str, int] = {}

        async def work(s: AsyncSession) -> None:
            row = (
                await s.execute(
                    select(
                        func.coalesce(func.sum(ModelCall.input_tokens), 0),
                        func.coalesce(func.sum(ModelCall.output_tokens), 0),
                        func.coalesce(func.sum(ModelCall.reasoning_tokens), 0),
                    ).where(ModelCall.operation_id == op)
                )
            ).one()
            totals.update(input=row[0], output=row[1], reasoning=row[2])
            now = utcnow()
            current = await s.scalar(select(Operation.status).where(Operation.id == op))
            if current in TERMINAL_STATUSES:
                return  # already ended (a node recorded it before the runner saw the error)
            if status != "completed":
                task_status = "cancelled" if status == "cancelled" else "failed"
                await s.execute(
                    update(OperationTask)
                    .where(
                        OperationTask.operation_id == op,
                        OperationTask.status.in_(ACTIVE_TASK_STATUSES),
                    )
                    .values(
                        status=task_status, completed_at=now, error_message=f"operation {status}"
                    )
                )
            await s.execute(
                update(Operation)
                .where(Operation.id == op)
                .values(
                    status=status,
                    answer=answer,
                    error=error,
                    completed_at=now,
                    input_tokens=row[0],
                    output_tokens=row[1],
                    reasoning_tokens=row[2],
                )
            )

        payload: dict[str, Any] = {
            "status": status,
            "answer": answer,
            "error": error,
            "usage": totals,
        }
        # One terminal event per run; a resumed run gets its own (keys carry the resume count).
        key = f"operation.end:{await self._resume_count(op)}"
        await self._write(op, work, (type_, payload, key))
        self._locks.pop(op, None)

    async def _resume_count(self, op: str) -> int:
        async with self.db.sessions() as s:
            count = await s.scalar(
                select(func.count()).where(
                    OperationEvent.operation_id == op,
                    OperationEvent.type == str(EventType.OPERATION_RESUMED),
                )
            )
        return count or 0

    async def status_of(self, op: str) -> tuple[str, datetime | None] | None:
        async with self.db.sessions() as s:
            row = (
                await s.execute(
                    select(Operation.status, Operation.completed_at).where(Operation.id == op)
                )
            ).first()
        return (row[0], row[1]) if row else None
