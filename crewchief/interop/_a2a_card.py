"""The agent card: what crewchief does, where its JSON-RPC endpoint is, its skills, and
how to authenticate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from a2a.types.a2a_pb2 import (
    AgentCapabilities,
    AgentCard,
    AgentInterface,
    AgentSkill,
    HTTPAuthSecurityScheme,
    SecurityRequirement,
    SecurityScheme,
    StringList,
)

if TYPE_CHECKING:
    from crewchief.config import Settings


def agent_card(settings: Settings, rpc_url: str, *, auth: bool = True) -> AgentCard:
    """The agent card: what crewchief does, where its JSON-RPC endpoint is, its skills.

    Args:
        rpc_url: The absolute URL of the JSON-RPC endpoint, as the client reached the server.
        auth: Whether calls need an API key (a bearer security scheme).
    """
    from crewchief import __version__
    from crewchief.skills.registry import skill_registry

    skills = [
        AgentSkill(
            id="operation",
            name="Operation",
            description=(
                "Turns a request into an operation: routed to a fast answer, or planned into"
                " tasks that delegates run, then answered. Message metadata may set"
                " 'workspace' (a directory under the server's workspace roots), 'route'"
                " ('fast' or 'plan') and 'approve_plan' (true: the task waits in"
                " input-required until a reply accepts, rejects or re-plans)."
            ),
            tags=["orchestration", "planning", "operation"],
            examples=["Summarize the trade-offs of SQLite and PostgreSQL for a small team."],
        )
    ]
    for meta in skill_registry(settings).list():
        tags = ["skill", meta.source]
        if "workspace" in meta.requires_context:
            tags.append("needs-workspace")
        skills.append(
            AgentSkill(
                id=f"skill:{meta.name}", name=meta.name, description=meta.description, tags=tags
            )
        )
    card = AgentCard(
        name="crewchief",
        description=(
            "An orchestration service: a request becomes an operation that is answered at once"
            " or planned into tasks and run, followed as the task's status updates."
        ),
        version=__version__,
        # One endpoint for both: 1.0 first (what clients prefer), 0.3 for older clients,
        # which then also find the card's v0.3 fields (url, preferredTransport).
        supported_interfaces=[
            AgentInterface(url=rpc_url, protocol_binding="JSONRPC", protocol_version=version)
            for version in ("1.0", "0.3")
        ],
        capabilities=AgentCapabilities(streaming=True, push_notifications=False),
        default_input_modes=["text/plain"],
        default_output_modes=["text/plain"],
        skills=skills,
    )
    if auth:
        card.security_schemes["bearer"].CopyFrom(
            SecurityScheme(
                http_auth_security_scheme=HTTPAuthSecurityScheme(
                    scheme="bearer",
                    bearer_format="crewchief API key",
                    description="An API key from `crewchief keys create`:"
                    " `Authorization: Bearer cc_...`.",
                )
            )
        )
        card.security_requirements.append(SecurityRequirement(schemes={"bearer": StringList()}))
    return card
