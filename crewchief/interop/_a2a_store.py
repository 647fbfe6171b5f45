"""A2A tasks read from crewchief's own database: the task store and the event stream.

A task *is* an operation (same id). Nothing about it is kept in an API process: ``GetTask``
folds the operation's stored events into the task on whichever instance is asked, a
cancel recorded by the SDK becomes :meth:`Crewchief.cancel`, and a client that
subscribes to a task running elsewhere follows the operation's events through the
event bus and the database.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from a2a.auth.user import User
from a2a.server.cluster import (
    ConcurrentTaskModificationError,
    StoredTask,
    TaskEventStream,
    TaskVersion,
    VersionedEvent,
    VersionedTaskStore,
)
from a2a.types.a2a_pb2 import (
    ListTasksRequest,
    ListTasksResponse,
    Task,
    TaskState,
)
from a2a.utils.errors import UnsupportedOperationError

from crewchief.errors import OperationNotFound
from crewchief.interop._a2a_mapping import conversation, ended, live_events, task_of
from crewchief.interop._follow import StoredEvent, follow
from crewchief.interop.principal import Principal

if TYPE_CHECKING:
    from a2a.server.context import ServerCallContext
    from a2a.server.events import Event

    from crewchief.client.facade import Crewchief

ChiefSource = Callable[[], "Crewchief"]


@dataclass(frozen=True, eq=False)
class A2ACaller(Principal, User):
    """A :class:`~crewchief.interop.principal.Principal` as the A2A SDK's call context holds
    its user: the owner every task is scoped to."""

    @property
    def is_authenticated(self) -> bool:
        return True

    @property
    def user_name(self) -> str:
        return self.owner or ""


def principal_of(context: ServerCallContext | None) -> A2ACaller | None:
    """The caller the API put in the call context (None: nobody we know)."""
    user = context.user if context is not None else None
    return user if isinstance(user, A2ACaller) else None


class SeqVersion(TaskVersion):
    """A task's version: the ``seq`` of its operation's newest stored event."""

    @property
    def seq(self) -> int:
        return int(self._value)


def _seq(version: TaskVersion) -> int:
    return version.seq if isinstance(version, SeqVersion) else 0


class OperationTaskStore(VersionedTaskStore):
    """Tasks as the operations of the caller's owner; another owner's are not found."""

    def __init__(self, chief: ChiefSource):
        self._chief = chief
        # Tasks this process is creating: their operation exists a moment before the SDK
        # saves the new task, and in that moment the SDK must not find it (it would take
        # the operation's progress so far for the task's start, and see it twice).
        self._creating: set[str] = set()

    def hide(self, task_id: str) -> None:
        """Hide ``task_id`` from this process's reads until the SDK saves it as a new task
        (or :meth:`show`). Other instances read it from the database meanwhile."""
        self._creating.add(task_id)

    def show(self, task_id: str) -> None:
        """Read ``task_id`` from the database again (its creation failed)."""
        self._creating.discard(task_id)

    async def get(self, task_id: str, context: ServerCallContext) -> StoredTask | None:
        """The task from its operation's stored events (None: unknown, or not the caller's)."""
        caller = principal_of(context)
        if caller is None or task_id in self._creating:
            return None
        try:
            op = await self._chief().get(task_id, events=True, **caller.scope)
        except OperationNotFound:
            return None
        events = [
            StoredEvent(e.seq, e.type, dict(e.payload), e.created_at) for e in op.events or []
        ]
        task, newest = task_of(op, events)
        return StoredTask(task, SeqVersion(newest))

    async def save(
        self,
        task: Task,
        *,
        event: Event | None,
        prev: Task | None,
        prev_version: TaskVersion,
        context: ServerCallContext,
    ) -> TaskVersion:
        """Nothing to write: the operation records itself. A task saved as canceled (the
        SDK's way to cancel a task another instance runs) cancels the operation.

        Raises:
            ConcurrentTaskModificationError: a cancel of an operation that ended otherwise
                (or is not the caller's), as the SDK expects.
        """
        del event, prev, prev_version
        self._creating.discard(task.id)
        if task.status.state == TaskState.TASK_STATE_CANCELED:
            await self._cancel(task.id, context)
        return TaskVersion.MISSING

    async def _cancel(self, task_id: str, context: ServerCallContext) -> None:
        caller = principal_of(context)
        chief = self._chief()
        try:
            if caller is None:
                raise OperationNotFound(task_id)
            current = await chief.get(task_id, **caller.scope)
            if not current.finished:
                current = await chief.cancel(task_id)
        except OperationNotFound:
            raise ConcurrentTaskModificationError(task_id) from None
        if current.status != "cancelled":
            raise ConcurrentTaskModificationError(task_id)

    async def list(self, params: ListTasksRequest, context: ServerCallContext) -> ListTasksResponse:
        """Not offered: ``GET /v1/operations`` lists operations with filters and paging."""
        raise UnsupportedOperationError(
            message="ListTasks is not offered: list operations with GET /v1/operations"
        )

    async def delete(self, task_id: str, context: ServerCallContext) -> None:
        """Not offered: an operation's record is kept."""
        raise UnsupportedOperationError(message="tasks are operations and are not deleted")


class OperationEventStream(TaskEventStream):
    """A task's events for a client that subscribes on an instance that does not run it:
    the operation's own events, through the event bus and the database."""

    def __init__(self, chief: ChiefSource):
        self._chief = chief

    async def publish(self, task_id: str, event: VersionedEvent) -> None:
        """Nothing to do: every instance derives the events from the operation's."""
        return None

    async def subscribe(
        self, task_id: str, *, after: TaskVersion
    ) -> AsyncGenerator[VersionedEvent, None]:
        """The task's updates after ``after``, until it ends or waits for input.

        The SDK has checked that the caller may see the task before it subscribes.
        """
        chief = self._chief()
        try:
            context_id, _ = conversation(await chief.get(task_id))
        except OperationNotFound:
            return
        async for stored in follow(chief, task_id, after=_seq(after), until=ended):
            for update in live_events(task_id, context_id, stored):
                yield VersionedEvent(event=update, version=SeqVersion(stored.seq))

    async def destroy(self, task_id: str) -> None:
        """Nothing is kept per task."""
        return None
