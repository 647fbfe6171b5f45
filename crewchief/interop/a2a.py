"""crewchief as an A2A agent: a message starts an operation, its task follows the operation.

The A2A task id is the operation id. :class:`OperationExecutor` starts the operation and
turns its events into the task's status updates (submitted, working for the route, the
plan and each task, then completed with the answer as an artifact, failed, canceled, or
input-required while a plan waits for approval); a reply on that task decides the plan.
:class:`OperationTaskStore` answers ``GetTask`` from crewchief's database, so any API
instance can answer for any task and nothing is lost when a process stops.

The HTTP side (the agent card, the JSON-RPC endpoint, who the caller is) is the API's:
it passes the caller in as an :class:`A2ACaller`, the call context's user.

Example (with the ``a2a-sdk`` client)::

    client = await create_client("http://127.0.0.1:8000", client_config=config)
    async for event in client.send_message(SendMessageRequest(message=message)):
        ...
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from a2a.server.agent_execution import (
    AgentExecutor,
    RequestContext,
    SimpleRequestContextBuilder,
)
from a2a.server.request_handlers import DefaultRequestHandler
from a2a.types.a2a_pb2 import (
    SendMessageRequest,
    Task,
    TaskState,
    TaskStatus,
    TaskStatusUpdateEvent,
)
from a2a.utils.errors import (
    InvalidParamsError,
    InvalidRequestError,
    TaskNotCancelableError,
    TaskNotFoundError,
    UnsupportedOperationError,
)
from google.protobuf.json_format import MessageToDict

from crewchief.errors import CrewchiefError, InvalidRequest, OperationNotFound, OperationStateError
from crewchief.interop._a2a_card import agent_card
from crewchief.interop._a2a_mapping import (
    META_KEY,
    TERMINAL_STATES,
    agent_message,
    conversation,
    ended,
    live_events,
)
from crewchief.interop._a2a_request import (
    WorkspaceRule,
    decision_of,
    metadata_of,
    new_operation,
    refuse,
)
from crewchief.interop._a2a_store import (
    A2ACaller,
    ChiefSource,
    OperationEventStream,
    OperationTaskStore,
    principal_of,
)
from crewchief.interop._follow import StoredEvent, follow, newest_seq

if TYPE_CHECKING:
    from a2a.server.context import ServerCallContext
    from a2a.server.events import EventQueue

    from crewchief.config import Settings

CARD_PATH = "/.well-known/agent-card.json"
RPC_PATH = "/a2a"
# A task parked in input-required (a plan waiting for a decision) is let go from this
# process's memory after this long: the reply may reach any instance, and is served from
# the database; a parked copy would only go stale if the plan is decided elsewhere.
IDLE_INPUT_SECONDS = 5.0
# How the validator's field names read in A2A terms.
_FIELDS = {"request:": "message.parts:", "workspace:": "metadata.workspace:"}


def _caller(context: RequestContext) -> A2ACaller:
    caller = principal_of(context.call_context)
    if caller is None:  # the API authenticates every call; this is a wiring mistake
        raise InvalidRequestError(message="unauthenticated call")
    return caller


def _refusal(exc: CrewchiefError) -> InvalidParamsError | InvalidRequestError:
    """A library refusal as an A2A error, its message naming the field in A2A terms."""
    message = str(exc)
    for ours, theirs in _FIELDS.items():
        if message.startswith(ours):
            message = theirs + message[len(ours) :]
    code = getattr(exc, "code", "error")
    if isinstance(exc, InvalidRequest):
        return InvalidParamsError(message=message, data={"code": code})
    return InvalidRequestError(message=message, data={"code": code})


def _check_reply(task: Task) -> None:
    """Refuse a reply on a task that waits for no plan decision."""
    if task.status.state != TaskState.TASK_STATE_INPUT_REQUIRED:
        state = TaskState.Name(task.status.state).removeprefix("TASK_STATE_").lower()
        raise UnsupportedOperationError(
            message=f"task {task.id} is {state}: only a task in input-required (a plan"
            " waiting for a decision) takes a reply"
        )


class CheckedRequests(SimpleRequestContextBuilder):
    """Refuses a message that cannot be run before anything starts for it: no task, no
    operation, only the error for the client."""

    def __init__(self, store: OperationTaskStore, rule: WorkspaceRule | None = None):
        super().__init__()
        self._store = store
        self._rule = rule

    async def build(
        self,
        context: ServerCallContext,
        params: SendMessageRequest | None = None,
        task_id: str | None = None,
        context_id: str | None = None,
        task: Task | None = None,
    ) -> RequestContext:
        """Check the message (see :func:`new_operation`, :func:`decision_of`), then build."""
        if params is not None:
            metadata = MessageToDict(params.metadata)
            try:
                if task_id is None:
                    new_operation(params.message, metadata, self._rule)
                else:
                    stored = await self._store.get(task_id, context)
                    if stored is not None:
                        _check_reply(stored.task)
                        # A reply need not repeat the conversation's id; without it the SDK
                        # would make up a new one when the task is not held in this process.
                        context_id = context_id or stored.task.context_id
                    decision_of(params.message, metadata)
            except CrewchiefError as exc:
                raise _refusal(exc) from None
        return await super().build(context, params, task_id, context_id, task)


class OperationExecutor(AgentExecutor):
    """Runs A2A messages as crewchief operations through the facade.

    Args:
        chief: Where the open :class:`~crewchief.client.facade.Crewchief` is.
        store: The task store the SDK reads (a task is hidden from it while created).
        workspace_rule: The server's rule for a requested workspace: the path it allows,
            or :class:`~crewchief.errors.InvalidRequest` naming ``metadata.workspace``;
            None allows no workspace.
    """

    def __init__(
        self,
        chief: ChiefSource,
        store: OperationTaskStore,
        *,
        workspace_rule: WorkspaceRule | None = None,
    ):
        self._chief = chief
        self._store = store
        self._rule = workspace_rule
        # Queues that got their task's terminal update: a cancel and the operation's own
        # cancelled event must not both end the task.
        self._ended: weakref.WeakSet[Any] = weakref.WeakSet()

    async def execute(self, context: RequestContext, event_queue: EventQueue) -> None:
        """Start the operation (or give a waiting plan the reply's decision) and relay its
        events until it ends or waits for a plan decision."""
        caller = _caller(context)
        task_id = str(context.task_id)
        if context.current_task is None:
            context_id = str(context.context_id)
            self._store.hide(task_id)  # until the SDK saved the task this enqueues
            try:
                await self._start(context, caller, event_queue)
            except BaseException:
                self._store.show(task_id)
                raise
            after = 0
        else:
            context_id = context.current_task.context_id
            after = await self._reply(context, caller)
        async for stored in follow(self._chief(), task_id, after=after, until=ended):
            await self._relay(event_queue, task_id, context_id, stored)

    async def _start(self, context: RequestContext, caller: A2ACaller, queue: EventQueue) -> None:
        message = context.message
        conversation_ids = {
            "context_id": context.context_id,
            "message_id": message.message_id if message is not None else None,
        }
        try:
            asked = new_operation(message, context.metadata, self._rule)
            handle = await self._chief().start(
                asked.text,
                workspace=asked.workspace,
                route=asked.route,
                approve_plan=asked.approve_plan,
                metadata={**asked.metadata, META_KEY: conversation_ids},
                operation_id=context.task_id,
                owner=caller.owner,
                api_key_id=caller.key_id,
            )
        except CrewchiefError as exc:
            raise _refusal(exc) from None
        handle.detach()  # the events are followed from the database and the bus
        task = Task(
            id=str(context.task_id),
            context_id=str(context.context_id),
            status=TaskStatus(state=TaskState.TASK_STATE_SUBMITTED),
        )
        if message is not None:
            task.history.append(message)
        await queue.enqueue_event(task)

    async def _reply(self, context: RequestContext, caller: A2ACaller) -> int:
        """Give the plan waiting on this task the reply's decision; the ``seq`` to follow
        the operation from."""
        task = context.current_task
        assert task is not None
        _check_reply(task)
        metadata = metadata_of(context.message, context.metadata)
        decision = decision_of(context.message, context.metadata)
        chief = self._chief()
        after = await newest_seq(chief, task.id)
        try:
            handle = await chief.review_plan(task.id, decision, **caller.scope)
        except OperationNotFound:
            raise TaskNotFoundError from None
        except OperationStateError as exc:
            raise UnsupportedOperationError(message=str(exc)) from None
        except InvalidRequest as exc:  # the decision: its fields, named where they came from
            where = "metadata.decision" if "decision" in metadata else "message.parts"
            raise refuse(where, str(exc)) from None
        except CrewchiefError as exc:
            raise _refusal(exc) from None
        handle.detach()
        return after

    async def _relay(
        self, queue: EventQueue, task_id: str, context_id: str, stored: StoredEvent
    ) -> None:
        for update in live_events(task_id, context_id, stored):
            if isinstance(update, TaskStatusUpdateEvent) and update.status.state in TERMINAL_STATES:
                if queue in self._ended:
                    return
                self._ended.add(queue)
            await queue.enqueue_event(update)

    async def cancel(self, context: RequestContext, event_queue: EventQueue) -> None:
        """Cancel the operation wherever it runs; the task ends canceled.

        Raises:
            TaskNotFoundError: not the caller's (or unknown).
            TaskNotCancelableError: it ended otherwise first.
        """
        caller = _caller(context)
        task_id = str(context.task_id)
        chief = self._chief()
        try:
            current = await chief.get(task_id, **caller.scope)
        except OperationNotFound:
            raise TaskNotFoundError from None
        if not current.finished:
            current = await chief.cancel(task_id)
        if current.status != "cancelled":
            raise TaskNotCancelableError(message=f"task {task_id} already ended {current.status}")
        if event_queue in self._ended:
            return
        self._ended.add(event_queue)
        context_id, _ = conversation(current)
        seq = await newest_seq(chief, task_id)
        canceled = TaskStatus(
            state=TaskState.TASK_STATE_CANCELED,
            message=agent_message(task_id, context_id, seq, "Cancelled."),
        )
        if current.completed_at is not None:
            canceled.timestamp.FromDatetime(current.completed_at)
        await event_queue.enqueue_event(
            TaskStatusUpdateEvent(task_id=task_id, context_id=context_id, status=canceled)
        )


def request_handler(
    chief: ChiefSource,
    settings: Settings,
    *,
    workspace_rule: WorkspaceRule | None = None,
) -> DefaultRequestHandler:
    """The SDK's request handler over operations: the executor, the task store and the
    event stream, all reading crewchief's own database through the facade."""
    store = OperationTaskStore(chief)
    return DefaultRequestHandler(
        agent_executor=OperationExecutor(chief, store, workspace_rule=workspace_rule),
        task_store=store,
        request_context_builder=CheckedRequests(store, workspace_rule),
        agent_card=agent_card(settings, RPC_PATH),
        event_stream=OperationEventStream(chief),
        interrupted_task_timeout=IDLE_INPUT_SECONDS,
    )


__all__ = [
    "CARD_PATH",
    "RPC_PATH",
    "CheckedRequests",
    "OperationEventStream",
    "OperationExecutor",
    "OperationTaskStore",
    "A2ACaller",
    "agent_card",
    "request_handler",
]
