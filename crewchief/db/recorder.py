"""Where operation state is saved: every write pairs a row change with its event.

Each method runs one transaction that updates rows and appends the matching
events, then publishes those events on the bus (persisted first, published
second). Events carry an idempotency key (``task.started:3``), so a node that
re-runs after a crash records nothing twice, and per-operation sequence
numbers stay gap-free.

Usage-ledger rows are buffered and written in the next transaction of the same
operation (at the latest when it ends), which saves a transaction per model
call.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from crewchief import metrics
from crewchief.db import _steering
from crewchief.db._sql import (
    CURRENT_TASK,
    TxLike,
    WriterLike,
    insert_call,
    insert_tasks,
    record_route,
    resume_count,
    round_key,
    route_fields,
    run_count,
    task_key,
)
from crewchief.db.models import utcnow
from crewchief.events import Event, EventBus, EventType
from crewchief.models.types import CallInfo, CallRecord, Usage
from crewchief.results import TERMINAL_STATUSES
from crewchief.state import RouteDecision

log = logging.getLogger(__name__)

END_EVENTS = {
    "completed": EventType.OPERATION_COMPLETED,
    "failed": EventType.OPERATION_FAILED,
    "cancelled": EventType.OPERATION_CANCELLED,
    "rejected": EventType.OPERATION_REJECTED,
}


@dataclass(frozen=True, slots=True)
class FinishedTask:
    """A task that already ended before its node ran (again)."""

    status: str
    result: str | None
    error: str | None


def delta_event(info: CallInfo, text: str) -> Event:
    """A token delta as a transient event (never stored, no seq)."""
    payload = {"node": info.node, "task": info.task, "text": text}
    return Event(info.operation_id or "", EventType.MODEL_DELTA, payload)


def usage_payload(u: Usage) -> dict[str, int]:
    """Tokens as events carry them."""
    return {"input": u.input, "output": u.output, "reasoning": u.reasoning}


class Recorder:
    """Persists operations, tasks, events and model usage; publishes events."""

    def __init__(self, writer: WriterLike, bus: EventBus):
        self.writer = writer
        self.bus = bus
        self._pending: dict[str, list[CallRecord]] = defaultdict(list)
        # Told (operation id, status) once an operation's end is stored; it must return at
        # once and never raise (the runtime stores the operation's memory in the background).
        self.on_end: Callable[[str, str], None] | None = None

    async def _write(self, op: str, work: Callable[[TxLike], list[Event | None] | Any]) -> Any:
        """Run ``work`` (plus buffered ledger rows) in one transaction; publish its events.

        ``work`` returns the events it appended, or ``(events, value)`` to also
        hand a value back to the caller.
        """
        ledger = self._pending.pop(op, [])

        def tx_work(tx: TxLike) -> Any:
            for record in ledger:
                insert_call(tx, record)
            return work(tx)

        try:
            out = await self.writer.run(tx_work)
        except BaseException:
            if ledger:
                self._pending[op][:0] = ledger
            raise
        events, value = out if isinstance(out, tuple) else (out, None)
        for event in events or ():
            if event is not None:
                self.bus.publish(event)
        return value

    async def close(self) -> None:
        """Close the database writer (buffered ledger rows of unfinished operations are lost)."""
        await self.writer.close()

    async def on_delta(self, info: CallInfo, text: str) -> None:
        """Publish a token delta (transient: never stored, no seq)."""
        if info.operation_id and self.bus.has_subscribers(info.operation_id):
            self.bus.publish(delta_event(info, text))

    async def model_call(self, record: CallRecord) -> None:
        """Add one attempt to the usage ledger (written with the operation's next write)."""
        metrics.model_call(
            record.alias, record.model, record.usage, record.duration_ms, record.error
        )
        op = record.info.operation_id
        if op is None:
            await self.writer.run_grouped(lambda tx: insert_call(tx, record))
        else:
            self._pending[op].append(record)

    # -- operations ---------------------------------------------------------------------

    async def create_operation(
        self,
        *,
        operation_id: str,
        request: str,
        workspace: str | None,
        route: str | None = None,
        metadata: dict[str, Any] | None = None,
        owner: str | None = None,
        options: dict[str, Any] | None = None,
        decision: RouteDecision | Any = None,
        lease: tuple[str, float] | None = None,
        then: Callable[[TxLike], Any] | None = None,
        api_key_id: str | None = None,
    ) -> None:
        """Insert the operation (status ``running``) with its first event, unless it exists.

        ``then(tx)`` runs last in the same transaction (a job queue enqueues the run).

        ``lease`` is ``(holder, seconds)``: the process that will run it holds its lease
        from the start, so no moment exists where it runs unowned (see :mod:`crewchief.db.leases`).

        With ``decision`` (the request was routed before the run) the route is recorded in
        the same transaction. Recording an operation that exists changes nothing.
        """
        now = utcnow()

        def work(tx: TxLike) -> list:
            tx.execute(
                "INSERT INTO operations (id, request, workspace, status, route, route_forced, metadata,"
                " owner, api_key_id, options, planning_input_tokens, planning_output_tokens,"
                " planning_reasoning_tokens, input_tokens, output_tokens, reasoning_tokens,"
                " lease_holder, lease_expires_at, created_at, started_at, updated_at)"
                " VALUES (:id, :request, :workspace, 'running', :route, :forced, :metadata,"
                " :owner, :key, :options, 0, 0, 0, 0, 0, 0, :holder, :expires, :now, :now, :now)"
                " ON CONFLICT (id) DO NOTHING",
                {
                    "id": operation_id,
                    "request": request,
                    "workspace": workspace,
                    "route": route,
                    "forced": tx.flag(route is not None),
                    "metadata": tx.json(metadata) if metadata is not None else None,
                    "owner": owner,
                    "key": api_key_id,
                    "options": tx.json(options) if options else None,
                    "holder": lease[0] if lease else None,
                    "expires": tx.ts(now + timedelta(seconds=lease[1])) if lease else None,
                    "now": tx.ts(now),
                },
            )
            payload = {"request": request, "workspace": workspace, "forced_route": route}
            started = tx.append(
                operation_id, EventType.OPERATION_STARTED, payload, "operation.started", now
            )
            events = [started]
            if decision is not None:
                events.append(record_route(tx, operation_id, route_fields(decision)))
            if then is not None and started is not None:  # not for a repeated record
                then(tx)
            return events

        await self._write(operation_id, work)

    async def operation_resumed(self, op: str) -> None:
        def work(tx: TxLike) -> list:
            n = resume_count(tx, op) + 1
            tx.execute(
                "UPDATE operations SET status = 'running', error = NULL, completed_at = NULL WHERE id = :op",
                {"op": op},
            )
            return [
                tx.append(
                    op,
                    EventType.OPERATION_RESUMED,
                    {"resume": n},
                    f"operation.resumed:{n}",
                    utcnow(),
                )
            ]

        await self._write(op, work)

    async def route_decided(self, op: str, decision: RouteDecision | Any) -> None:
        """Record the route (a :class:`RouteDecision` or the detector's ``Decision``)."""
        fields = route_fields(decision)
        await self._write(op, lambda tx: [record_route(tx, op, fields)])

    async def fast_path_failed(self, op: str, error: str) -> None:
        def work(tx: TxLike) -> list:
            tx.execute(
                "UPDATE operations SET route = 'plan', simplicity_tier = 'balanced' WHERE id = :op",
                {"op": op},
            )
            payload = {"error": error, "fallback": "plan"}
            return [
                tx.append(op, EventType.FAST_PATH_FAILED, payload, "fast_path.failed", utcnow())
            ]

        await self._write(op, work)

    async def planning_context(
        self, op: str, context: dict[str, Any], *, plan_round: int = 1
    ) -> None:
        """Record what the planner's prompt got beyond the request (earlier operations, the
        owner's profile) and why: on the operation, and as a ``plan.context`` event."""

        def work(tx: TxLike) -> list:
            tx.execute(
                "UPDATE operations SET planning_context = :context WHERE id = :op",
                {"op": op, "context": tx.json(context)},
            )
            payload = dict(context, round=plan_round)
            key = round_key("plan.context", plan_round)
            return [tx.append(op, EventType.PLAN_CONTEXT, payload, key, utcnow())]

        await self._write(op, work)

    async def plan_invalid(self, op: str, attempt: int, error: str, *, plan_round: int = 1) -> None:
        payload = {"attempt": attempt, "error": error, "round": plan_round}
        key = round_key(f"plan.invalid:{attempt}", plan_round)
        await self._event(op, EventType.PLAN_INVALID, payload, key)

    async def plan_generated(
        self,
        op: str,
        *,
        tasks: list[dict[str, Any]],
        text: str,
        usage: Usage,
        plan_round: int = 1,
    ) -> None:
        """Store the plan and its tasks (``pending``), with one event each.

        A later round (the reviewer asked for a new plan) replaces the tasks of
        the previous one, which never ran.
        """
        now = utcnow()

        def work(tx: TxLike) -> list:
            tx.execute(
                "UPDATE operations SET plan_text = :text, plan_generated_at = :now, planning_input_tokens = :i,"
                " planning_output_tokens = :o, planning_reasoning_tokens = :r WHERE id = :op",
                {
                    "op": op,
                    "text": text,
                    "now": tx.ts(now),
                    "i": usage.input,
                    "o": usage.output,
                    "r": usage.reasoning,
                },
            )
            if (
                plan_round > 1
                and tx.one(
                    "SELECT 1 FROM operation_events WHERE operation_id = :op AND key = :key",
                    {"op": op, "key": round_key("plan.generated", plan_round)},
                )
                is None
            ):
                tx.execute("DELETE FROM operation_tasks WHERE operation_id = :op", {"op": op})
            insert_tasks(tx, op, tasks, now)
            plan_payload = {
                "text": text,
                "tasks": tasks,
                "usage": usage_payload(usage),
                "round": plan_round,
            }
            key = round_key("plan.generated", plan_round)
            events = [tx.append(op, EventType.PLAN_GENERATED, plan_payload, key, now)]
            for t in tasks:
                payload = dict(t, sequence=t["id"])
                key = round_key(f"task.created:{t['id']}", plan_round)
                events.append(tx.append(op, EventType.TASK_CREATED, payload, key, now))
            return events

        await self._write(op, work)

    # -- tasks ---------------------------------------------------------------------------

    async def task_started(self, op: str, seq: int, active_form: str) -> FinishedTask | None:
        """Move a task to ``in_progress``. If it already ended, return how (and change nothing)."""

        def work(tx: TxLike) -> tuple[list, FinishedTask | None]:
            row = tx.one(
                "SELECT status, result, error_message, version FROM operation_tasks"
                " WHERE operation_id = :op AND sequence = :seq" + CURRENT_TASK,
                {"op": op, "seq": seq, "cur": tx.flag(True)},
            )
            if row is not None and row[0] in ("completed", "failed"):
                return [], FinishedTask(*row[:3])
            now = utcnow()
            tx.execute(
                "UPDATE operation_tasks SET status = 'in_progress', started_at = :now, error_message = NULL"
                " WHERE operation_id = :op AND sequence = :seq" + CURRENT_TASK,
                {"op": op, "seq": seq, "now": tx.ts(now), "cur": tx.flag(True)},
            )
            version = row[3] if row else 1
            payload = {"sequence": seq, "version": version, "active_form": active_form}
            key = task_key(tx, "task.started", op, seq)
            return [tx.append(op, EventType.TASK_STARTED, payload, key, now)], None

        finished = await self._write(op, work)
        if finished is None:
            metrics.task_started(op, seq)
        return finished

    async def task_completed(
        self, op: str, seq: int, *, result: str, model: str | None, usage: Usage
    ) -> None:
        def work(tx: TxLike) -> list:
            now = utcnow()
            tx.execute(
                "UPDATE operation_tasks SET status = 'completed', result = :result, model = :model,"
                " input_tokens = :i, output_tokens = :o, reasoning_tokens = :r, completed_at = :now"
                " WHERE operation_id = :op AND sequence = :seq" + CURRENT_TASK,
                {
                    "cur": tx.flag(True),
                    "op": op,
                    "seq": seq,
                    "result": result,
                    "model": model,
                    "i": usage.input,
                    "o": usage.output,
                    "r": usage.reasoning,
                    "now": tx.ts(now),
                },
            )
            payload = {
                "sequence": seq,
                "result": result,
                "model": model,
                "usage": usage_payload(usage),
            }
            key = task_key(tx, "task.completed", op, seq)
            return [tx.append(op, EventType.TASK_COMPLETED, payload, key, now)]

        await self._write(op, work)
        metrics.task_ended(op, seq, "completed")

    async def tool_called(self, op: str, seq: int, step: int, call: dict[str, Any]) -> None:
        """Record one tool call of a task: ``{tool, args, ok, output, repairs, refused}``."""
        payload = {"sequence": seq, "step": step, **call}

        def work(tx: TxLike) -> list:
            key = f"{task_key(tx, 'task.tool_called', op, seq)}:{step}"
            return [tx.append(op, EventType.TASK_TOOL_CALLED, payload, key, utcnow())]

        await self._write(op, work)

    async def skill_activated(self, op: str, seq: int, skill: dict[str, Any]) -> None:
        """Record that a task follows a skill: ``{skill, by, model_alias, tools}``."""
        payload = {"sequence": seq, **skill}

        def work(tx: TxLike) -> list:
            now = utcnow()
            # An executor may pick the skill itself; the task row then says which.
            tx.execute(
                "UPDATE operation_tasks SET skill = :skill WHERE operation_id = :op AND sequence = :seq"
                + CURRENT_TASK,
                {"op": op, "seq": seq, "skill": skill.get("skill"), "cur": tx.flag(True)},
            )
            key = task_key(tx, "task.skill", op, seq)
            return [tx.append(op, EventType.TASK_SKILL_ACTIVATED, payload, key, now)]

        await self._write(op, work)

    async def plan_tool_called(
        self, op: str, step: int, call: dict[str, Any], *, plan_round: int = 1
    ) -> None:
        """Record one meta-tool call of the planner: ``{tool, args, ok, answer, model, usage}``."""
        payload = {"step": step, **call}
        key = round_key(f"plan.tool_called:{step}", plan_round)
        await self._event(op, EventType.PLAN_TOOL_CALLED, payload, key)

    async def budget_event(
        self, op: str, type_: EventType, payload: dict[str, Any], key: str
    ) -> None:
        """A budget's warning or a downgrade, on the operation whose call caused it (once
        per ``key``)."""
        await self._event(op, type_, payload, key)

    async def _event(self, op: str, type_: EventType, payload: dict[str, Any], key: str) -> None:
        await self._write(op, lambda tx: [tx.append(op, type_, payload, key, utcnow())])

    async def task_failed(self, op: str, seq: int, error: str, *, model: str | None = None) -> None:
        def work(tx: TxLike) -> list:
            now = utcnow()
            tx.execute(
                "UPDATE operation_tasks SET status = 'failed', error_message = :error, model = :model,"
                " completed_at = :now WHERE operation_id = :op AND sequence = :seq" + CURRENT_TASK,
                {
                    "op": op,
                    "seq": seq,
                    "error": error,
                    "model": model,
                    "now": tx.ts(now),
                    "cur": tx.flag(True),
                },
            )
            payload = {"sequence": seq, "error": error}
            key = task_key(tx, "task.failed", op, seq)
            return [tx.append(op, EventType.TASK_FAILED, payload, key, now)]

        await self._write(op, work)
        metrics.task_ended(op, seq, "failed")

    # -- steering ------------------------------------------------------------------------

    async def awaiting_approval(
        self, op: str, *, plan_round: int, tasks: list[dict[str, Any]], text: str
    ) -> None:
        """The plan waits for a reviewer: status ``awaiting_approval`` and an event."""
        await self._write(
            op, _steering.awaiting_approval(op, plan_round=plan_round, tasks=tasks, text=text)
        )

    async def plan_reviewed(
        self,
        op: str,
        *,
        plan_round: int,
        action: str,
        tasks: list[dict[str, Any]] | None = None,
        text: str | None = None,
        feedback: str | None = None,
    ) -> bool:
        """Record a reviewer's decision once; an edit replaces the (never run) tasks.

        Returns:
            False when this round's decision was already recorded (nothing changed).
        """
        work = _steering.plan_reviewed(
            op, plan_round=plan_round, action=action, tasks=tasks, text=text, feedback=feedback
        )
        return await self._write(op, work)

    async def task_rerun(
        self,
        op: str,
        *,
        sequence: int,
        affected: list[int],
        description: str | None,
        instructions: str | None,
    ) -> dict[int, int]:
        """Start a new version of ``sequence`` and of its dependents in ``affected``.

        The current rows become history; the operation is ``running`` again.

        Returns:
            The new version of each re-run task.

        Raises:
            OperationStateError: the operation is not one that can re-run a task.
        """
        work = _steering.task_rerun(
            op,
            sequence=sequence,
            affected=affected,
            description=description,
            instructions=instructions,
        )
        return await self._write(op, work)

    # -- the end -------------------------------------------------------------------------

    async def finish(
        self, op: str, status: str, *, answer: str | None = None, error: str | None = None
    ) -> None:
        """End the operation: token totals from the ledger, open tasks closed, terminal event.

        The run lease is given up in the same transaction (nothing runs an ended operation).

        Does nothing if the operation already ended (a node recorded the failure
        before the runner saw it).
        """
        type_ = END_EVENTS[status]

        ended: list[tuple[str | None, float | None]] = []

        def work(tx: TxLike) -> list:
            row = tx.one(
                "SELECT status, route, created_at FROM operations WHERE id = :op", {"op": op}
            )
            if row is not None and row[0] in TERMINAL_STATUSES:
                return []
            now = utcnow()
            if row is not None:
                created = tx.parse_ts(row[2])
                ended.append((row[1], (now - created).total_seconds() if created else None))
            totals = tx.one(
                "SELECT COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0),"
                " COALESCE(SUM(reasoning_tokens), 0) FROM model_calls WHERE operation_id = :op",
                {"op": op},
            ) or (0, 0, 0)
            if status != "completed":
                tx.execute(
                    "UPDATE operation_tasks SET status = :task_status, completed_at = :now, error_message = :msg"
                    " WHERE operation_id = :op AND status IN ('pending', 'in_progress')"
                    + CURRENT_TASK,
                    {
                        "op": op,
                        "now": tx.ts(now),
                        "msg": f"operation {status}",
                        "cur": tx.flag(True),
                        "task_status": "cancelled" if status == "cancelled" else "failed",
                    },
                )
            tx.execute(
                "UPDATE operations SET status = :status, answer = :answer, error = :error, completed_at = :now,"
                " updated_at = :now, input_tokens = :i, output_tokens = :o, reasoning_tokens = :r,"
                " lease_holder = NULL, lease_expires_at = NULL WHERE id = :op",
                {
                    "op": op,
                    "status": status,
                    "answer": answer,
                    "error": error,
                    "now": tx.ts(now),
                    "i": totals[0],
                    "o": totals[1],
                    "r": totals[2],
                },
            )
            payload = {
                "status": status,
                "answer": answer,
                "error": error,
                "usage": {"input": totals[0], "output": totals[1], "reasoning": totals[2]},
            }
            # One terminal event per run; a resumed run gets its own.
            return [tx.append(op, type_, payload, f"operation.end:{run_count(tx, op)}", now)]

        await self._write(op, work)
        self.writer.forget(op)
        metrics.forget(op)
        for route, seconds in ended:
            metrics.operation_finished(route, status, seconds)
        if ended and self.on_end is not None:
            try:
                self.on_end(op, status)
            except Exception:  # noqa: BLE001 - the end is stored; what follows it is extra
                log.exception("operation %s: the end hook failed", op)
