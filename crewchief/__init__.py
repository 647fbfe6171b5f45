"""crewchief: LangGraph agent orchestration.

The public API is listed in ``__all__``. Names are imported on first use, so
``import crewchief`` stays cheap (the CLI depends on that).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS: dict[str, str] = {
    "Crewchief": "crewchief.client.facade",
    "OperationHandle": "crewchief.client.facade",
    "InvalidRequest": "crewchief.client.facade",
    "OperationResult": "crewchief.results",
    "OperationSummary": "crewchief.results",
    "TaskResult": "crewchief.results",
    "TokenUsage": "crewchief.results",
    "ModelUsage": "crewchief.results",
    "UsageReport": "crewchief.results",
    "Event": "crewchief.events",
    "EventType": "crewchief.events",
    "Settings": "crewchief.config",
    "AliasConfig": "crewchief.config",
    "ProviderConfig": "crewchief.config",
    "load_settings": "crewchief.config",
    "build_operation_graph": "crewchief.graphs.operation",
    "OperationContext": "crewchief.state",
    "OperationState": "crewchief.state",
    "FakeChatModel": "crewchief.models.fake",
    "FakeScript": "crewchief.models.fake",
    "FakeRule": "crewchief.models.fake",
    "FakeReply": "crewchief.models.fake",
    "normalize_effort": "crewchief.effort",
    "SkillRegistry": "crewchief.skills.registry",
    "ActiveSkill": "crewchief.skills.registry",
    "activate_skill": "crewchief.skills.registry",
    "Workspace": "crewchief.tools.workspace",
    "SimplicityDetector": "crewchief.simplicity.detector",
    "Decision": "crewchief.simplicity.detector",
    "TierConfig": "crewchief.config",
    "CrewchiefError": "crewchief.errors",
    "OperationNotFound": "crewchief.errors",
}

__all__ = [
    "ActiveSkill",
    "AliasConfig",
    "Crewchief",
    "CrewchiefError",
    "Decision",
    "Event",
    "EventType",
    "FakeChatModel",
    "FakeReply",
    "FakeRule",
    "FakeScript",
    "InvalidRequest",
    "ModelUsage",
    "OperationContext",
    "OperationHandle",
    "OperationNotFound",
    "OperationResult",
    "OperationState",
    "OperationSummary",
    "ProviderConfig",
    "Settings",
    "SimplicityDetector",
    "SkillRegistry",
    "TaskResult",
    "TierConfig",
    "TokenUsage",
    "UsageReport",
    "Workspace",
    "__version__",
    "activate_skill",
    "build_operation_graph",
    "load_settings",
    "normalize_effort",
]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'crewchief' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__


if TYPE_CHECKING:
    from crewchief.client.facade import Crewchief, InvalidRequest, OperationHandle
    from crewchief.config import AliasConfig, ProviderConfig, Settings, TierConfig, load_settings
    from crewchief.effort import normalize_effort
    from crewchief.errors import CrewchiefError, OperationNotFound
    from crewchief.events import Event, EventType
    from crewchief.graphs.operation import build_operation_graph
    from crewchief.models.fake import FakeChatModel, FakeReply, FakeRule, FakeScript
    from crewchief.results import (
        ModelUsage,
        OperationResult,
        OperationSummary,
        TaskResult,
        TokenUsage,
        UsageReport,
    )
    from crewchief.simplicity.detector import Decision, SimplicityDetector
    from crewchief.skills.registry import ActiveSkill, SkillRegistry, activate_skill
    from crewchief.state import OperationContext, OperationState
    from crewchief.tools.workspace import Workspace
