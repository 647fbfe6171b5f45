"""Read queries over the app database (writes live in :mod:`crewchief.db.recorder`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select

from crewchief.db.models import ModelCall, Operation, OperationEvent, OperationTask
from crewchief.db.session import Database
from crewchief.errors import OperationNotFound
from crewchief.schemas import (
    EventRecord,
    ModelUsage,
    OperationResult,
    OperationSummary,
    Simplicity,
    TaskResult,
    TokenUsage,
)


def _task(row: OperationTask) -> TaskResult:
    return TaskResult(
        sequence=row.sequence,
        description=row.description,
        active_form=row.active_form,
        skill=row.skill,
        depends_on=row.depends_on or [],
        status=row.status,
        result=row.result,
        error=row.error_message,
        model=row.model,
        usage=TokenUsage(
            input=row.input_tokens, output=row.output_tokens, reasoning=row.reasoning_tokens
        ),
        created_at=row.created_at,
        started_at=row.started_at,
        completed_at=row.completed_at,
    )


async def get_operation(
    db: Database, operation_id: str, *, include_events: bool = False
) -> OperationResult:
    """Load one operation with its tasks, usage per model and (optionally) events.

    Raises:
        OperationNotFound: no operation has that id.
    """
    async with db.sessions() as s:
        op = await s.get(Operation, operation_id)
        if op is None:
            raise OperationNotFound(f"operation {operation_id!r} does not exist")
        tasks = (
            await s.scalars(
                select(OperationTask)
                .where(OperationTask.operation_id == operation_id)
                .order_by(OperationTask.sequence)
            )
        ).all()
        usage_rows = (
            await s.execute(
                select(
                    ModelCall.alias,
                    ModelCall.model,
                    func.count(),
                    func.count(ModelCall.error),
                    func.sum(ModelCall.input_tokens),
                    func.sum(ModelCall.output_tokens),
                    func.sum(ModelCall.reasoning_tokens),
                )
                .where(ModelCall.operation_id == operation_id)
                .group_by(ModelCall.alias, ModelCall.model)
                .order_by(ModelCall.alias, ModelCall.model)
            )
        ).all()
        events = None
        if include_events:
            events = [
                EventRecord(seq=e.seq, type=e.type, payload=e.payload, created_at=e.created_at)
                for e in await list_events(db, operation_id, session=s)
            ]
    by_model = [
        ModelUsage(
            alias=a, model=m, calls=n, failed_calls=f, input=i or 0, output=o or 0, reasoning=r or 0
        )
        for a, m, n, f, i, o, r in usage_rows
    ]
    return OperationResult(
        id=op.id,
        status=op.status,
        request=op.request,
        workspace=op.workspace,
        route=op.route,
        route_forced=op.route_forced,
        simplicity=Simplicity(score=op.simplicity_score, reasons=op.simplicity_reasons or []),
        plan_text=op.plan_text,
        plan_generated_at=op.plan_generated_at,
        planning_usage=TokenUsage(
            input=op.planning_input_tokens,
            output=op.planning_output_tokens,
            reasoning=op.planning_reasoning_tokens,
        ),
        answer=op.answer,
        error=op.error,
        tasks=[_task(t) for t in tasks],
        usage=_live_usage(by_model)
        if op.status == "running"
        else TokenUsage(
            input=op.input_tokens, output=op.output_tokens, reasoning=op.reasoning_tokens
        ),
        usage_by_model=by_model,
        metadata=op.metadata_,
        created_at=op.created_at,
        started_at=op.started_at,
        completed_at=op.completed_at,
        events=events,
    )


def _live_usage(by_model: list[ModelUsage]) -> TokenUsage:
    return TokenUsage(
        input=sum(m.input for m in by_model),
        output=sum(m.output for m in by_model),
        reasoning=sum(m.reasoning for m in by_model),
    )


async def list_events(
    db: Database, operation_id: str, *, after_seq: int = 0, session=None
) -> list[OperationEvent]:  # noqa: ANN001
    """Stored events of an operation with ``seq > after_seq``, in order."""
    stmt = (
        select(OperationEvent)
        .where(OperationEvent.operation_id == operation_id, OperationEvent.seq > after_seq)
        .order_by(OperationEvent.seq)
    )
    if session is not None:
        return list((await session.scalars(stmt)).all())
    async with db.sessions() as s:
        return list((await s.scalars(stmt)).all())


async def list_operations(
    db: Database, *, status: str | None = None, limit: int = 20, before: datetime | None = None
) -> list[OperationSummary]:
    """Newest first; ``before`` pages back from a ``created_at``."""
    counts = (
        select(OperationTask.operation_id, func.count().label("n"))
        .group_by(OperationTask.operation_id)
        .subquery()
    )
    stmt = (
        select(Operation, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.operation_id == Operation.id)
        .order_by(Operation.created_at.desc(), Operation.id.desc())
        .limit(limit)
    )
    if status:
        stmt = stmt.where(Operation.status == status)
    if before is not None:
        stmt = stmt.where(Operation.created_at < before)
    async with db.sessions() as s:
        rows = (await s.execute(stmt)).all()
    return [
        OperationSummary(
            id=op.id,
            status=op.status,
            request=op.request,
            route=op.route,
            created_at=op.created_at,
            completed_at=op.completed_at,
            tasks=n,
        )
        for op, n in rows
    ]
