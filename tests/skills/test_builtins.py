"""The skills shipped with crewchief: they load, render, and grant only what they need."""

from __future__ import annotations

import re

import pytest

from crewchief.skills.registry import SkillRegistry, activate_skill, catalog

BUILTINS = ["debugging", "documentation", "performance", "refactoring", "security-audit", "testing"]
WRITERS = {"debugging", "documentation", "refactoring", "testing"}


@pytest.fixture(scope="module")
def registry() -> SkillRegistry:
    return SkillRegistry.load()


def test_every_builtin_loads_without_problems(registry: SkillRegistry) -> None:
    assert registry.problems == ()
    assert registry.names() == BUILTINS


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_renders_for_a_task(registry: SkillRegistry, name: str) -> None:
    active = activate_skill(
        registry, name, "Make parse_config faster", workspace="/ws", files="app/config.py"
    )
    assert "Make parse_config faster" in active.instructions
    assert "app/config.py" in active.instructions
    # Nothing that looks like a placeholder survives outside code.
    prose = re.sub(r"```.*?```|`[^`\n]*`", "", active.instructions, flags=re.DOTALL)
    assert not re.search(r"\{[a-z_]+\}", prose)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_has_steps_checklist_and_report_format(registry: SkillRegistry, name: str) -> None:
    body = registry.get(name).body
    assert re.search(r"^1\. ", body, re.MULTILINE), "numbered steps"
    assert "- [ ] " in body, "a checklist"
    assert re.search(r"^## Report", body, re.MULTILINE)
    assert f"{name.replace('-', ' ').upper()} REPORT" in body, "an exact report header"
    assert 40 <= len(registry.meta(name).path.read_text().splitlines()) <= 90


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_tools_follow_least_privilege(registry: SkillRegistry, name: str) -> None:
    meta = registry.meta(name)
    assert ("write_file" in meta.allowed_tools) == (name in WRITERS)
    assert {"read_file", "grep_files"} <= set(meta.allowed_tools)
    assert meta.requires_context == ("workspace",)


def test_builtin_models(registry: SkillRegistry) -> None:
    models = {m.name: m.model for m in registry.list()}
    assert models == {
        "debugging": "delegate",
        "documentation": "delegate",
        "performance": "either",
        "refactoring": "delegate",
        "security-audit": "orchestrator",
        "testing": "delegate",
    }
    assert activate_skill(registry, "security-audit", "t", workspace="/ws").model_alias == (
        "orchestrator"
    )


def test_builtins_need_a_workspace_so_the_catalog_omits_them_without_one(
    registry: SkillRegistry,
) -> None:
    assert catalog(registry, workspace=False) == ""
    lines = catalog(registry, workspace=True).splitlines()
    assert [line.split(" — ")[0] for line in lines] == [f"- {n}" for n in BUILTINS]
    assert "security-audit" in lines[4] and lines[4].endswith("(orchestrator model; read-only)")
