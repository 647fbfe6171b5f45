"""`GET /v1/operations/{id}/events`: the operation's events as server-sent events."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response
from fastapi.responses import StreamingResponse

from crewchief.api.deps import CallerDep, ChiefDep, SettingsDep
from crewchief.api.errors import ERROR_RESPONSES, NOT_FOUND
from crewchief.api.routes.operations import OperationId
from crewchief.api.sse import event_stream, open_stream
from crewchief.api.streaming import ClosingStreamingResponse
from crewchief.errors import OperationNotFound
from crewchief.events import TERMINAL_EVENTS

# One server-sent event: its fields as they appear on the wire (OpenAPI describes an
# event stream by the schema of each event).
_EVENT_SCHEMA = {
    "type": "object",
    "properties": {
        "id": {"type": "string", "description": "The event's seq; absent on model.delta."},
        "event": {"type": "string", "description": "The event type, e.g. task.started."},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "description": "JSON: operation_id, seq, type, payload, created_at.",
        },
        "retry": {"type": "integer", "description": "Reconnection delay in ms (first)."},
    },
}

router = APIRouter(prefix="/v1/operations", tags=["events"], responses=ERROR_RESPONSES)

_DESCRIPTION = """Server-sent events: every stored event of the operation with a higher `seq`
than `Last-Event-ID` (header, or the `last_event_id` query parameter), then live events as they
happen. Each has `id:` (its `seq`, 1, 2, 3...), `event:` (its type, e.g. `task.started`) and
`data:` (JSON: `operation_id`, `seq`, `type`, `payload`, `created_at`). Token deltas arrive as
`model.delta` events without an id. A `: keep-alive` comment is sent when the stream is idle.
After the terminal event (`operation.completed`, `.failed`, `.cancelled` or `.rejected`) the
stream closes. 204 when the operation has ended and there is nothing after `Last-Event-ID`."""


@router.get(
    "/{operation_id}/events",
    response_class=StreamingResponse,
    summary="Follow an operation's events (SSE, resumable)",
    description=_DESCRIPTION,
    responses={
        200: {
            "description": "An event stream.",
            "content": {"text/event-stream": {"schema": _EVENT_SCHEMA}},
        },
        204: {"description": "The operation ended and there is nothing newer to send."},
        **NOT_FOUND,
    },
)
async def operation_events(
    operation_id: OperationId,
    caller: CallerDep,
    chief: ChiefDep,
    settings: SettingsDep,
    last_event_id_header: Annotated[
        int | None,
        Header(alias="Last-Event-ID", ge=0, description="Resume after this seq."),
    ] = None,
    last_event_id: Annotated[
        int | None, Query(ge=0, description="Resume after this seq (for clients without headers).")
    ] = None,
    deltas: Annotated[bool, Query(description="Include live `model.delta` token events.")] = True,
) -> Response:
    after = max(last_event_id_header or 0, last_event_id or 0)
    # Subscribed before the read (no gap), and both before the response starts: an unknown
    # operation is a 404, not an empty stream.
    opened = await open_stream(chief, operation_id, after=after, deltas=deltas)
    if opened is None or not caller.sees(opened.replay.owner):
        if opened is not None:
            opened.sub.close()
        raise OperationNotFound(f"operation {operation_id!r} does not exist")
    replay = opened.replay
    if not replay.events and replay.last_seq <= after and replay.last_type in TERMINAL_EVENTS:
        opened.sub.close()
        return Response(status_code=204)
    stream = event_stream(
        chief,
        operation_id,
        after=after,
        heartbeat=settings.api.heartbeat_seconds,
        deltas=deltas,
        opened=opened,
    )
    return ClosingStreamingResponse(
        stream,
        on_close=opened.sub.close,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
