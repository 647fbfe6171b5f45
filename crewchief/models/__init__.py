"""Model aliases, provider adapters, reasoning-effort mapping and the ``fake`` provider."""

from crewchief.models.effort import Effort, normalize_effort
from crewchief.models.fake import FakeChatModel, FakeReply, FakeRule, FakeScript
from crewchief.models.registry import CallInfo, CallRecord, ModelRegistry, ModelReply, Usage

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
