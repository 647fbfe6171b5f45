"""How an operation reads as an A2A task: its states, its status messages, its answer.

One mapping serves both sides: the executor turns each event of a running operation into
the task's status updates as they happen, and the task store folds the stored events into
the same task for ``GetTask`` on any instance. Message ids are derived from the operation
and the event's ``seq``, so both give the same history.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from a2a.types.a2a_pb2 import (
    Artifact,
    Message,
    Part,
    Role,
    Task,
    TaskArtifactUpdateEvent,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)

from crewchief.events import EventType
from crewchief.interop._follow import StoredEvent
from crewchief.results import OperationResult

# Where an operation started over A2A keeps its conversation: ``metadata["a2a"]``.
META_KEY = "a2a"
# The longest excerpt of a task's result a status message carries (the answer is whole).
RESULT_EXCERPT = 300

TERMINAL_STATES = frozenset(
    {
        TaskState.TASK_STATE_COMPLETED,
        TaskState.TASK_STATE_FAILED,
        TaskState.TASK_STATE_CANCELED,
        TaskState.TASK_STATE_REJECTED,
    }
)

REVIEW_HINT = (
    "The plan waits for your decision. Reply on this task with 'accept' to run it, 'reject'"
    " to drop it, or anything else as feedback to plan again."
)


@dataclass(frozen=True, slots=True)
class Step:
    """One event as the task shows it: the state it puts the task in and what it says."""

    state: int
    text: str | None


def _excerpt(text: Any) -> str:
    text = str(text or "").strip()
    return text if len(text) <= RESULT_EXCERPT else text[: RESULT_EXCERPT - 1] + "…"


def _route(p: dict[str, Any]) -> str:
    text = f"Route decided: {p.get('route')}"
    if p.get("forced"):
        return text + " (asked for)."
    score = p.get("score")
    return text + (f" (simplicity score {score:.2f})." if isinstance(score, int | float) else ".")


def _reviewed(p: dict[str, Any]) -> str:
    action = p.get("action")
    if action == "replan":
        return f"Planning again with the feedback: {p.get('feedback') or ''}".strip()
    return {"accept": "Plan accepted.", "edit": "Plan edited.", "reject": "Plan rejected."}.get(
        str(action), f"Plan decision: {action}."
    )


_WORKING = TaskState.TASK_STATE_WORKING

# What each event type says while the operation runs (the others are not status changes).
_SAYS = {
    EventType.OPERATION_RESUMED: lambda p: "Resumed after an interruption.",
    EventType.ROUTE_DECIDED: _route,
    EventType.FAST_PATH_FAILED: lambda p: f"The fast path failed ({p.get('error')}); planning.",
    EventType.PLAN_GENERATED: lambda p: f"Plan made:\n{p.get('text') or ''}".strip(),
    EventType.PLAN_REVIEWED: _reviewed,
    EventType.TASK_STARTED: lambda p: f"Task {p.get('sequence')} started: {p.get('active_form')}",
    EventType.TASK_COMPLETED: lambda p: (
        f"Task {p.get('sequence')} completed: {_excerpt(p.get('result'))}"
    ),
    EventType.TASK_FAILED: lambda p: f"Task {p.get('sequence')} failed: {p.get('error')}",
}


def step(type_: str, payload: dict[str, Any]) -> Step | None:
    """The task's state and status text after an event of this type (None: no change)."""
    says = _SAYS.get(type_)  # type: ignore[call-overload]
    if says is not None:
        return Step(_WORKING, says(payload))
    if type_ == EventType.PLAN_AWAITING_APPROVAL:
        plan = str(payload.get("text") or "").strip()
        return Step(TaskState.TASK_STATE_INPUT_REQUIRED, f"{REVIEW_HINT}\n\n{plan}".strip())
    if type_ == EventType.OPERATION_COMPLETED:
        return Step(TaskState.TASK_STATE_COMPLETED, None)  # the answer is the artifact
    if type_ == EventType.OPERATION_FAILED:
        return Step(TaskState.TASK_STATE_FAILED, str(payload.get("error") or "failed"))
    if type_ == EventType.OPERATION_CANCELLED:
        return Step(TaskState.TASK_STATE_CANCELED, "Cancelled.")
    if type_ == EventType.OPERATION_REJECTED:
        return Step(TaskState.TASK_STATE_REJECTED, str(payload.get("error") or "plan rejected"))
    return None


def agent_message(task_id: str, context_id: str, seq: int, text: str) -> Message:
    """The agent's status message for the event with this ``seq``."""
    return Message(
        message_id=f"{task_id}:{seq}",
        role=Role.ROLE_AGENT,
        parts=[Part(text=text)],
        task_id=task_id,
        context_id=context_id,
    )


def status(
    task_id: str, context_id: str, event: StoredEvent, found: Step | None = None
) -> TaskStatus | None:
    """The task's status after ``event`` (None when the event changes nothing)."""
    found = found or step(event.type, event.payload)
    if found is None:
        return None
    out = TaskStatus(state=found.state)  # type: ignore[arg-type]
    if found.text:
        out.message.CopyFrom(agent_message(task_id, context_id, event.seq, found.text))
    out.timestamp.FromDatetime(event.created_at)
    return out


def answer_artifact(task_id: str, answer: str) -> Artifact:
    """The operation's answer as the task's one artifact."""
    return Artifact(artifact_id=f"{task_id}:answer", name="answer", parts=[Part(text=answer)])


def live_events(
    task_id: str, context_id: str, event: StoredEvent
) -> list[TaskStatusUpdateEvent | TaskArtifactUpdateEvent]:
    """What a client following the task receives for one event of its operation."""
    new = status(task_id, context_id, event)
    if new is None:
        return []
    out: list[TaskStatusUpdateEvent | TaskArtifactUpdateEvent] = []
    answer = event.payload.get("answer")
    if event.type == EventType.OPERATION_COMPLETED and answer:
        out.append(
            TaskArtifactUpdateEvent(
                task_id=task_id,
                context_id=context_id,
                artifact=answer_artifact(task_id, str(answer)),
                last_chunk=True,
            )
        )
    out.append(TaskStatusUpdateEvent(task_id=task_id, context_id=context_id, status=new))
    return out


def ended(event: StoredEvent) -> bool:
    """Whether a client following the task stops after this event: the operation ended, or
    waits for a plan decision."""
    found = step(event.type, event.payload)
    return found is not None and (
        found.state in TERMINAL_STATES or found.state == TaskState.TASK_STATE_INPUT_REQUIRED
    )


def conversation(op: OperationResult) -> tuple[str, str]:
    """The A2A context id and the id of the request's message (an operation not started
    over A2A is its own context)."""
    a2a = (op.metadata or {}).get(META_KEY)
    a2a = a2a if isinstance(a2a, dict) else {}
    return str(a2a.get("context_id") or op.id), str(a2a.get("message_id") or f"{op.id}:request")


def _apply(task: Task, new: TaskStatus) -> None:
    # As the SDK's task manager does: the previous status message moves into the history.
    if task.status.HasField("message"):
        task.history.append(task.status.message)
    task.status.CopyFrom(new)


def task_of(op: OperationResult, events: Iterable[StoredEvent]) -> tuple[Task, int]:
    """The task an operation is, from its stored events, and the newest event's ``seq``."""
    context_id, message_id = conversation(op)
    request = Message(
        message_id=message_id,
        role=Role.ROLE_USER,
        parts=[Part(text=op.request)],
        task_id=op.id,
        context_id=context_id,
    )
    task = Task(
        id=op.id,
        context_id=context_id,
        status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
        history=[request],
    )
    task.status.timestamp.FromDatetime(op.created_at)
    newest = 0
    for event in events:
        newest = max(newest, event.seq)
        new = status(op.id, context_id, event)
        if new is not None:
            _apply(task, new)
    if op.status == "completed" and op.answer:
        task.artifacts.append(answer_artifact(op.id, op.answer))
    return task, newest
