"""Model aliases, provider adapters, reasoning-effort mapping and the ``fake`` provider.

The names below load on first access: ``crewchief.models.effort`` is needed by
settings validation, which must not pay for importing LangChain.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crewchief.models.effort import Effort, normalize_effort
    from crewchief.models.fake import FakeChatModel, FakeReply, FakeRule, FakeScript
    from crewchief.models.registry import CallInfo, CallRecord, ModelRegistry, ModelReply, Usage

_WHERE = {
    "Effort": "effort",
    "normalize_effort": "effort",
    "FakeChatModel": "fake",
    "FakeReply": "fake",
    "FakeRule": "fake",
    "FakeScript": "fake",
    "CallInfo": "registry",
    "CallRecord": "registry",
    "ModelRegistry": "registry",
    "ModelReply": "registry",
    "Usage": "registry",
}

__all__ = [
    "CallInfo",
    "CallRecord",
    "Effort",
    "FakeChatModel",
    "FakeReply",
    "FakeRule",
    "FakeScript",
    "ModelRegistry",
    "ModelReply",
    "Usage",
    "normalize_effort",
]


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f"crewchief.models.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
