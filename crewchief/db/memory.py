"""A recorder that keeps an operation in memory: for runs whose context says ``persist: false``.

It answers every call the way :class:`crewchief.db.recorder.Recorder` does —
events numbered per operation and never recorded twice, a finished task
reported as finished, one decision per plan round, a re-run refused unless the
operation ended — and publishes the same events on the bus, but writes nothing
to disk. An operation is dropped a while after it ends (the newest
``keep_ended`` ended ones are kept, so a late repeat of a write still changes
nothing).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from crewchief import metrics
from crewchief.db._sql import round_key, route_fields
from crewchief.db.recorder import END_EVENTS, FinishedTask, delta_event, usage_payload
from crewchief.errors import CrewchiefError, OperationStateError
from crewchief.events import Event, EventBus, EventType
from crewchief.models.types import CallInfo, CallRecord, Usage
from crewchief.results import TERMINAL_STATUSES
from crewchief.state import RouteDecision

_RERUNNABLE = ("completed", "failed", "cancelled")


@dataclass(slots=True)
class _Task:
    spec: dict[str, Any]
    status: str = "pending"
    result: str | None = None
    error: str | None = None
    version: int = 1


@dataclass(slots=True)
class _Operation:
    status: str = "running"
    keys: set[str] = field(default_factory=set)
    seq: int = 0
    tasks: dict[int, _Task] = field(default_factory=dict)
    usage: Usage = field(default_factory=Usage)
    runs: int = 0  # how many times it was started again (resumed, or a task re-run)
    resumes: int = 0
    route: str | None = None
    created: float = field(default_factory=time.monotonic)


class MemoryRecorder:
    """The in-memory recorder: same calls and events as :class:`Recorder`, nothing stored."""

    def __init__(self, bus: EventBus, *, keep_ended: int = 1024):
        self.bus = bus
        self._ops: dict[str, _Operation] = {}
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._keep_ended = keep_ended

    async def close(self) -> None:
        self._ops.clear()
        self._ended.clear()

    # -- the event log ---------------------------------------------------------------------

    def _op(self, op: str) -> _Operation:
        if op not in self._ops:
            self._ops[op] = _Operation()
        return self._ops[op]

    def _append(self, op: str, type_: EventType, payload: dict[str, Any], key: str) -> bool:
        """Number and publish an event unless its key was recorded already."""
        state = self._op(op)
        if key in state.keys:
            return False
        state.keys.add(key)
        state.seq += 1
        self.bus.publish(Event(op, type_, payload, state.seq))
        return True

    def _task_key(self, op: str, name: str, seq: int) -> str:
        task = self._op(op).tasks.get(seq)
        version = task.version if task else 1
        return f"{name}:{seq}" if version == 1 else f"{name}:{seq}.v{version}"

    async def on_delta(self, info: CallInfo, text: str) -> None:
        """Publish a token delta (transient: no seq)."""
        if info.operation_id and self.bus.has_subscribers(info.operation_id):
            self.bus.publish(delta_event(info, text))

    async def model_call(self, record: CallRecord) -> None:
        """Add a call's tokens to its operation's totals (reported when it ends)."""
        metrics.model_call(
            record.alias, record.model, record.usage, record.duration_ms, record.error
        )
        op = record.info.operation_id
        if op is not None and op in self._ops:
            self._ops[op].usage = self._ops[op].usage + record.usage

    # -- operations ------------------------------------------------------------------------

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
        then: Any = None,
        api_key_id: str | None = None,
    ) -> None:
        if then is not None:
            raise CrewchiefError("an operation kept in memory cannot take a queued job")
        payload = {"request": request, "workspace": workspace, "forced_route": route}
        self._append(operation_id, EventType.OPERATION_STARTED, payload, "operation.started")
        self._op(operation_id).route = route
        if decision is not None:
            await self.route_decided(operation_id, decision)

    async def operation_resumed(self, op: str) -> None:
        state = self._op(op)
        self._ended.pop(op, None)
        state.status = "running"
        state.resumes += 1
        state.runs += 1
        n = state.resumes
        self._append(op, EventType.OPERATION_RESUMED, {"resume": n}, f"operation.resumed:{n}")

    async def route_decided(self, op: str, decision: RouteDecision | Any) -> None:
        fields = route_fields(decision)
        self._append(op, EventType.ROUTE_DECIDED, dict(fields), "route.decided")
        self._op(op).route = fields.get("route")

    async def fast_path_failed(self, op: str, error: str) -> None:
        payload = {"error": error, "fallback": "plan"}
        self._append(op, EventType.FAST_PATH_FAILED, payload, "fast_path.failed")

    async def planning_context(
        self, op: str, context: dict[str, Any], *, plan_round: int = 1
    ) -> None:
        payload = dict(context, round=plan_round)
        self._append(op, EventType.PLAN_CONTEXT, payload, round_key("plan.context", plan_round))

    async def plan_invalid(self, op: str, attempt: int, error: str, *, plan_round: int = 1) -> None:
        payload = {"attempt": attempt, "error": error, "round": plan_round}
        key = round_key(f"plan.invalid:{attempt}", plan_round)
        self._append(op, EventType.PLAN_INVALID, payload, key)

    async def plan_generated(
        self, op: str, *, tasks: list[dict[str, Any]], text: str, usage: Usage, plan_round: int = 1
    ) -> None:
        state = self._op(op)
        payload = {
            "text": text,
            "tasks": tasks,
            "usage": usage_payload(usage),
            "round": plan_round,
        }
        if not self._append(
            op, EventType.PLAN_GENERATED, payload, round_key("plan.generated", plan_round)
        ):
            return
        # A later round replaces the tasks of the previous one, which never ran.
        state.tasks = {t["id"]: _Task(dict(t)) for t in tasks}
        for t in tasks:
            key = round_key(f"task.created:{t['id']}", plan_round)
            self._append(op, EventType.TASK_CREATED, dict(t, sequence=t["id"]), key)

    async def budget_event(
        self, op: str, type_: EventType, payload: dict[str, Any], key: str
    ) -> None:
        self._append(op, type_, payload, key)

    async def plan_tool_called(
        self, op: str, step: int, call: dict[str, Any], *, plan_round: int = 1
    ) -> None:
        key = round_key(f"plan.tool_called:{step}", plan_round)
        self._append(op, EventType.PLAN_TOOL_CALLED, {"step": step, **call}, key)

    # -- tasks -----------------------------------------------------------------------------

    async def task_started(self, op: str, seq: int, active_form: str) -> FinishedTask | None:
        task = self._op(op).tasks.get(seq)
        if task is not None and task.status in ("completed", "failed"):
            return FinishedTask(task.status, task.result, task.error)
        version = task.version if task else 1
        if task is not None:
            task.status, task.error = "in_progress", None
        payload = {"sequence": seq, "version": version, "active_form": active_form}
        self._append(op, EventType.TASK_STARTED, payload, self._task_key(op, "task.started", seq))
        metrics.task_started(op, seq)
        return None

    async def task_completed(
        self, op: str, seq: int, *, result: str, model: str | None, usage: Usage
    ) -> None:
        key = self._task_key(op, "task.completed", seq)
        task = self._op(op).tasks.get(seq)
        if task is not None:
            task.status, task.result = "completed", result
        payload = {
            "sequence": seq,
            "result": result,
            "model": model,
            "usage": usage_payload(usage),
        }
        self._append(op, EventType.TASK_COMPLETED, payload, key)
        metrics.task_ended(op, seq, "completed")

    async def task_failed(self, op: str, seq: int, error: str, *, model: str | None = None) -> None:
        key = self._task_key(op, "task.failed", seq)
        task = self._op(op).tasks.get(seq)
        if task is not None:
            task.status, task.error = "failed", error
        self._append(op, EventType.TASK_FAILED, {"sequence": seq, "error": error}, key)
        metrics.task_ended(op, seq, "failed")

    async def tool_called(self, op: str, seq: int, step: int, call: dict[str, Any]) -> None:
        key = f"{self._task_key(op, 'task.tool_called', seq)}:{step}"
        self._append(op, EventType.TASK_TOOL_CALLED, {"sequence": seq, "step": step, **call}, key)

    async def skill_activated(self, op: str, seq: int, skill: dict[str, Any]) -> None:
        key = self._task_key(op, "task.skill", seq)
        self._append(op, EventType.TASK_SKILL_ACTIVATED, {"sequence": seq, **skill}, key)

    # -- steering --------------------------------------------------------------------------

    async def awaiting_approval(
        self, op: str, *, plan_round: int, tasks: list[dict[str, Any]], text: str
    ) -> None:
        payload = {"round": plan_round, "tasks": tasks, "text": text}
        key = round_key("plan.awaiting_approval", plan_round)
        state = self._op(op)
        if self._append(op, EventType.PLAN_AWAITING_APPROVAL, payload, key) and (
            state.status == "running"
        ):
            state.status = "awaiting_approval"

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
        payload: dict[str, Any] = {"round": plan_round, "action": action}
        if feedback is not None:
            payload["feedback"] = feedback
        if tasks is not None:
            payload["tasks"] = tasks
        key = round_key("plan.reviewed", plan_round)
        if not self._append(op, EventType.PLAN_REVIEWED, payload, key):
            return False
        state = self._op(op)
        if action != "reject" and state.status == "awaiting_approval":
            state.status = "running"
        if action == "edit" and tasks is not None:
            state.tasks = {t["id"]: _Task(dict(t)) for t in tasks}
        return True

    async def task_rerun(
        self,
        op: str,
        *,
        sequence: int,
        affected: list[int],
        description: str | None,
        instructions: str | None,
    ) -> dict[int, int]:
        state = self._op(op)
        if state.status not in _RERUNNABLE:
            raise OperationStateError(f"operation {op} is {state.status}: it cannot re-run a task")
        versions: dict[int, int] = {}
        for seq in [sequence, *affected]:
            task = state.tasks.get(seq)
            if task is None:
                continue
            spec = dict(task.spec)
            if seq == sequence and description:
                spec["description"] = description
            state.tasks[seq] = _Task(spec, version=task.version + 1)
            versions[seq] = task.version + 1
        self._ended.pop(op, None)
        state.status = "running"
        state.runs += 1
        payload = {
            "sequence": sequence,
            "version": versions.get(sequence),
            "dependents": affected,
            "description": description,
            "instructions": instructions,
        }
        key = f"task.rerun:{sequence}.v{versions.get(sequence)}"
        self._append(op, EventType.TASK_RERUN, payload, key)
        return versions

    # -- the end ---------------------------------------------------------------------------

    async def finish(
        self, op: str, status: str, *, answer: str | None = None, error: str | None = None
    ) -> None:
        state = self._op(op)
        if state.status in TERMINAL_STATUSES:
            return
        state.status = status
        if status != "completed":
            closed = "cancelled" if status == "cancelled" else "failed"
            for task in state.tasks.values():
                if task.status in ("pending", "in_progress"):
                    task.status, task.error = closed, f"operation {status}"
        payload = {
            "status": status,
            "answer": answer,
            "error": error,
            "usage": usage_payload(state.usage),
        }
        self._append(op, END_EVENTS[status], payload, f"operation.end:{state.runs}")
        metrics.forget(op)
        metrics.operation_finished(state.route, status, time.monotonic() - state.created)
        self._ended[op] = None
        self._ended.move_to_end(op)
        while len(self._ended) > self._keep_ended:
            old, _ = self._ended.popitem(last=False)
            self._ops.pop(old, None)
