"""What an A2A message asks for: the request's text, the options in its metadata, and a
reply to a plan waiting for a decision. Every refusal names the field and what was expected."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from a2a.types.a2a_pb2 import Message
from a2a.utils.errors import InvalidParamsError
from google.protobuf.json_format import MessageToDict

from crewchief.interop._a2a_mapping import META_KEY

# Metadata keys crewchief reads; the others are kept as the operation's metadata.
OPTIONS = ("workspace", "route", "approve_plan", "decision")
ROUTES = ("fast", "plan")
# Replies to a plan waiting for a decision that accept or reject it; any other text is
# feedback to plan again.
ACCEPT = frozenset({"accept", "accepted", "approve", "approved", "yes", "ok", "lgtm", "go"})
REJECT = frozenset({"reject", "rejected", "no"})

WorkspaceRule = Callable[[str], str | None]


def refuse(field_name: str, message: str) -> InvalidParamsError:
    """A refusal naming ``field_name`` (``message.parts[1]``, ``metadata.route``...)."""
    return InvalidParamsError(message=f"{field_name}: {message}", data={"field": field_name})


@dataclass(frozen=True, slots=True)
class NewOperation:
    """A message that starts an operation."""

    text: str
    workspace: str | None = None
    route: str | None = None
    approve_plan: bool = False
    metadata: dict[str, Any] = field(default_factory=dict)


def message_text(message: Message | None, *, required: bool = True) -> str:
    """The message's text parts joined by blank lines.

    Raises:
        InvalidParamsError: a part is not text, or (``required``) there is no text.
    """
    texts: list[str] = []
    for i, part in enumerate(message.parts if message is not None else []):
        kind = part.WhichOneof("content")
        if kind != "text":
            raise refuse(f"message.parts[{i}]", f"expected a text part, got a {kind} part")
        texts.append(part.text)
    text = "\n\n".join(t for t in texts if t.strip()).strip()
    if required and not text:
        raise refuse("message.parts", "expected at least one text part with the request")
    return text


def metadata_of(message: Message | None, request_metadata: dict[str, Any]) -> dict[str, Any]:
    """The request's metadata and the message's (which wins where both set a key)."""
    own = MessageToDict(message.metadata) if message is not None else {}
    return {**request_metadata, **own}


def new_operation(
    message: Message | None, request_metadata: dict[str, Any], rule: WorkspaceRule | None
) -> NewOperation:
    """The operation a first message asks for.

    Args:
        rule: The server's rule for workspaces (the absolute path it allows, or it
            raises naming ``metadata.workspace``); None allows none.

    Raises:
        InvalidParamsError: naming the field (``message.parts``, ``metadata.route``...).
    """
    text = message_text(message)
    meta = metadata_of(message, request_metadata)
    route = meta.get("route")
    if route is not None and route not in ROUTES:
        raise refuse("metadata.route", f"expected 'fast' or 'plan', got {route!r}")
    approve = meta.get("approve_plan", False)
    if not isinstance(approve, bool):
        raise refuse("metadata.approve_plan", f"expected true or false, got {approve!r}")
    if "decision" in meta:
        raise refuse(
            "metadata.decision",
            "only a reply on a task waiting for a plan decision (input-required) takes one",
        )
    if META_KEY in meta:
        raise refuse(f"metadata.{META_KEY}", "reserved for the task's conversation ids")
    workspace = meta.get("workspace")
    if workspace is not None:
        if not isinstance(workspace, str) or not workspace.strip():
            raise refuse(
                "metadata.workspace", f"expected an absolute path (a string), got {workspace!r}"
            )
        if rule is None:
            raise refuse("metadata.workspace", "this server allows no workspaces")
        workspace = rule(workspace)
    rest = {k: v for k, v in meta.items() if k not in OPTIONS}
    return NewOperation(text, workspace, route, approve, rest)


def decision_of(message: Message | None, request_metadata: dict[str, Any]) -> dict[str, Any]:
    """The plan decision a reply carries: ``metadata.decision`` as ``review_plan`` takes it,
    else its text: accept, reject, or feedback to plan again.

    Raises:
        InvalidParamsError: naming the field.
    """
    meta = metadata_of(message, request_metadata)
    decision = meta.get("decision")
    if decision is not None:
        if not isinstance(decision, dict):
            raise refuse(
                "metadata.decision",
                'expected an object such as {"action": "accept"}, got ' + repr(decision),
            )
        return decision
    text = message_text(message, required=False)
    if not text:
        raise refuse(
            "message.parts",
            "expected 'accept', 'reject' or feedback for a new plan (or metadata.decision)",
        )
    word = text.strip().strip(".!").lower()
    if word in ACCEPT:
        return {"action": "accept"}
    if word in REJECT:
        return {"action": "reject"}
    return {"action": "replan", "feedback": text}
