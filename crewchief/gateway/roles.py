"""The roles a gateway request plays, and how a request says which one it is.

A role comes from, in order: the body's ``role`` field, the ``X-Crewchief-Role``
header, or the model name (``"architect"``, ``"crewchief/review"``: for clients that
can only set a model name, one per editor-agent mode). Without any, it is inferred
from the request's system prompt and latest human message (:mod:`crewchief.gateway.infer`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crewchief.gateway.errors import GatewayError

ROLES: tuple[str, ...] = (
    "architect",
    "implementation",
    "review",
    "testing",
    "documentation",
    "debugger",
    "research",
    "general",
)
MODEL_PREFIX = "crewchief/"
# What a role runs on until a routing table says otherwise: design, debugging and research
# need the reasoning model; the rest is routine work for the cheap delegate.
DEFAULT_ALIAS: dict[str, str] = {
    "architect": "orchestrator",
    "debugger": "orchestrator",
    "research": "orchestrator",
    "implementation": "delegate",
    "review": "delegate",
    "testing": "delegate",
    "documentation": "delegate",
    "general": "delegate",
}


@dataclass(frozen=True, slots=True)
class RoleChoice:
    """The role of a request and where it came from (``body``, ``header``, ``model``,
    ``inferred``), with the cues an inferred one was read from."""

    role: str
    source: str
    reasons: tuple[str, ...] = ()


def role_in_model(model: str) -> str | None:
    """The role a model name stands for (``architect``, ``crewchief/architect``), or None."""
    name = model[len(MODEL_PREFIX) :] if model.startswith(MODEL_PREFIX) else model
    return name if name in ROLES else None


def _checked(value: str, param: str) -> str:
    role = value.strip().lower()
    if role not in ROLES:
        raise GatewayError(
            400,
            f"unknown role {value!r}; expected one of {', '.join(ROLES)}",
            code="invalid_role",
            param=param,
        )
    return role


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


def choose_role(
    body_role: str | None,
    header_role: str | None,
    model: str,
    messages: list[dict[str, Any]] | None = None,
) -> RoleChoice:
    """The request's role from the first source that names one; else inferred from its
    system prompt and its latest human message.

    Raises:
        GatewayError: 400 when the body or the header names an unknown role.
    """
    if body_role is not None:
        return RoleChoice(_checked(body_role, "role"), "body")
    if header_role:
        return RoleChoice(_checked(header_role, "X-Crewchief-Role"), "header")
    if (role := role_in_model(model)) is not None:
        return RoleChoice(role, "model")
    from crewchief.gateway.infer import infer_role  # it imports ROLES from here

    messages = messages or []
    system = "\n".join(_text(m) for m in messages if m.get("role") in ("system", "developer"))
    request = next((_text(m) for m in reversed(messages) if m.get("role") == "user"), "")
    inferred = infer_role(system or None, request)
    return RoleChoice(inferred.role, "inferred", tuple(inferred.reasons))
