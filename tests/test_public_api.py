"""The public API changes only on purpose."""

import subprocess
import sys

import crewchief

EXPECTED = [
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


def test_all_is_pinned() -> None:
    assert sorted(crewchief.__all__) == sorted(EXPECTED)


def test_every_public_name_resolves() -> None:
    for name in crewchief.__all__:
        assert getattr(crewchief, name) is not None


# A hang guard, not a speed target: the subprocess below normally ends in about a second.
HANG_GUARD_S = 30


def test_import_is_light() -> None:
    code = "import sys, crewchief; print(sorted(m for m in sys.modules if m.startswith(('langgraph', 'langchain', 'sqlalchemy'))))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=HANG_GUARD_S
    )
    assert out.stdout.strip() == "[]"
