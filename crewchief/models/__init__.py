"""Model aliases, provider adapters, reasoning-effort mapping and the ``fake`` provider.

The names below load on first access: ``crewchief.effort`` is needed by
settings validation, which must not pay for importing LangChain.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from crewchief.effort import Effort, normalize_effort
    from crewchief.models.fake import FakeChatModel, FakeReply, FakeRule, FakeScript
    from crewchief.models.registry import ModelRegistry, ModelReply
    from crewchief.models.types import CallInfo, CallRecord, Cost, Usage

_WHERE = {
    "Effort": "crewchief.effort",
    "normalize_effort": "crewchief.effort",
    "FakeChatModel": "fake",
    "FakeReply": "fake",
    "FakeRule": "fake",
    "FakeScript": "fake",
    "CallInfo": "types",
    "CallRecord": "types",
    "Cost": "types",
    "ModelRegistry": "registry",
    "ModelReply": "registry",
    "Usage": "types",
}

__all__ = [
    "CallInfo",
    "CallRecord",
    "Cost",
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
        where = _WHERE[name]
        module = where if "." in where else f"crewchief.models.{where}"
        return getattr(import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
