"""The roles a gateway request plays, and how a request says which one it is.

A role comes from, in order: the body's ``role`` field, the ``X-Crewchief-Role``
header, or the model name (``"architect"``, ``"crewchief/review"``: for clients that
can only set a model name, one per editor-agent mode). Without any, the request
plays ``general``.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    ``default``)."""

    role: str
    source: str


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


def choose_role(body_role: str | None, header_role: str | None, model: str) -> RoleChoice:
    """The request's role from the first source that names one.

    Raises:
        GatewayError: 400 when the body or the header names an unknown role.
    """
    if body_role is not None:
        return RoleChoice(_checked(body_role, "role"), "body")
    if header_role:
        return RoleChoice(_checked(header_role, "X-Crewchief-Role"), "header")
    if (role := role_in_model(model)) is not None:
        return RoleChoice(role, "model")
    return RoleChoice("general", "default")
