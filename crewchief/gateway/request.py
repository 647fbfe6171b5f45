"""What a chat completion request asks for, checked before anything is sent upstream.

Only the fields the gateway acts on are checked; everything else OpenAI's API takes
(``tools``, ``tool_choice``, ``response_format``, ``n``, ``stop``, ``seed``...) goes
upstream untouched. The gateway's own fields (``role``, ``conversation_id``,
``profile``, ``x_crewchief``) are taken out first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from crewchief.gateway.errors import GatewayError

MESSAGE_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
PROFILES = ("personal", "work")
_OWN_FIELDS = ("role", "conversation_id", "profile", "x_crewchief")


@dataclass
class ChatRequest:
    """A checked request: what goes upstream, and what the gateway itself was asked."""

    body: dict[str, Any]  # for the upstream, without the gateway's own fields
    model: str
    stream: bool
    include_usage: bool  # the client asked for a usage chunk at the end of the stream
    role: str | None = None
    conversation_id: str | None = None
    profile: str | None = None
    options: dict[str, Any] = field(default_factory=dict)  # ``x_crewchief``
    effort: str | None = None  # model "auto": the reasoning effort of its simplicity tier


def _fail(message: str, param: str) -> GatewayError:
    return GatewayError(400, message, code="invalid_request", param=param)


def _string(value: Any, param: str, *, required: bool = False) -> str | None:
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"{param} must be a non-empty string", param)
    return value


def _conversation(value: Any) -> str | None:
    conversation = _string(value, "conversation_id")
    if conversation is not None and len(conversation) > 128:
        raise _fail("conversation_id must be at most 128 characters", "conversation_id")
    return conversation


def _object(data: dict[str, Any], name: str) -> dict[str, Any]:
    value = data.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _fail(f"{name} must be an object", name)
    return value


def _check_messages(messages: Any) -> None:
    if not isinstance(messages, list) or not messages:
        raise _fail("messages must be a non-empty array of message objects", "messages")
    for i, message in enumerate(messages):
        where = f"messages.{i}"
        if not isinstance(message, dict):
            raise _fail(f"{where} must be an object with role and content", where)
        role = message.get("role")
        if role not in MESSAGE_ROLES:
            raise _fail(
                f"{where}.role must be one of {', '.join(MESSAGE_ROLES)}, got {role!r}",
                f"{where}.role",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise _fail(f"{where}.content must be a string, an array of parts or null", where)
        if content is None and role in ("system", "developer", "user"):
            raise _fail(f"{where}.content is required for a {role} message", f"{where}.content")


def parse_chat_request(data: Any) -> ChatRequest:
    """Check a ``/v1/chat/completions`` body.

    Raises:
        GatewayError: 400 naming the field at fault and what was expected.
    """
    if not isinstance(data, dict):
        raise _fail("the body must be a JSON object", "body")
    model = _string(data.get("model"), "model", required=True)
    assert model is not None
    _check_messages(data.get("messages"))
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise _fail("stream must be true or false", "stream")
    n = data.get("n", 1)
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise _fail("n must be a positive integer", "n")
    stream_options = _object(data, "stream_options")
    options = _object(data, "x_crewchief")
    profile = _string(data.get("profile"), "profile")
    if profile is not None and profile not in PROFILES:
        raise _fail(f"profile must be one of {', '.join(PROFILES)}", "profile")
    role = data.get("role")
    if role is not None and not isinstance(role, str):
        raise _fail("role must be a string", "role")
    body = {k: v for k, v in data.items() if k not in _OWN_FIELDS}
    return ChatRequest(
        body=body,
        model=model,
        stream=stream,
        include_usage=bool(stream_options.get("include_usage")),
        role=role,
        conversation_id=_conversation(data.get("conversation_id")),
        profile=profile,
        options=options,
    )
