"""Activating a skill for a task: rendered instructions, model alias, allowed tools; the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

from crewchief.skills.registry import (
    MissingSkillContext,
    SkillRegistry,
    UnknownSkill,
    activate_skill,
    catalog,
)
from tests.skills.conftest import write_skill


def registry_with(user_dir: Path, builtins: bool = False) -> SkillRegistry:
    registry = SkillRegistry.load([user_dir], builtins=builtins)
    assert registry.problems == ()
    return registry


def test_placeholders_are_filled_and_code_braces_kept(user_dir: Path) -> None:
    body = (
        "Task: {task_description}\n"
        "Request: {request}\n"
        "Root: {workspace}\n"
        "Files: {files}\n"
        "Before: {dependencies}\n"
        'Escaped: {{task_description}} and a JSON example {"ok": true}\n'
        "Inline `{files}` stays.\n"
        "```json\n"
        '{"files": ["{files}"], "nested": {{1}}}\n'
        "```\n"
    )
    write_skill(user_dir, "review", body)
    active = activate_skill(
        registry_with(user_dir),
        "review",
        "Check a.py",
        request="Review the parser",
        workspace=Path("/srv/app"),
        files="a.py, b.py",
        dependencies="task 1: parser found",
    )
    assert active.instructions == (
        "Task: Check a.py\n"
        "Request: Review the parser\n"
        "Root: /srv/app\n"
        "Files: a.py, b.py\n"
        "Before: task 1: parser found\n"
        'Escaped: {task_description} and a JSON example {"ok": true}\n'
        "Inline `{files}` stays.\n"
        "```json\n"
        '{"files": ["{files}"], "nested": {{1}}}\n'
        "```"
    )


def test_values_are_not_themselves_rendered(user_dir: Path) -> None:
    write_skill(user_dir, "review", "Task: {task_description} / {files}\n")
    active = activate_skill(registry_with(user_dir), "review", "print {files} and {{x}}", files="a")
    assert active.instructions == "Task: print {files} and {{x}} / a"


def test_missing_optional_values_read_as_none(user_dir: Path) -> None:
    write_skill(user_dir, "review", "Files: {files}\nWorkspace: {workspace}\n")
    active = activate_skill(registry_with(user_dir), "review", "task")
    assert active.instructions == "Files: (none)\nWorkspace: (none)"


def test_activation_restricts_tools(user_dir: Path) -> None:
    write_skill(user_dir, "audit", allowed_tools="read_file grep_files")
    active = activate_skill(registry_with(user_dir), "audit", "look")
    assert active.allowed_tools == frozenset({"read_file", "grep_files"})
    assert active.allows("read_file") and active.allows("grep_files")
    assert not active.allows("write_file")
    assert not active.allows("list_files")


def test_skill_without_allowed_tools_allows_every_file_tool(user_dir: Path) -> None:
    write_skill(user_dir, "free")
    active = activate_skill(registry_with(user_dir), "free", "anything")
    assert active.allows("write_file") and active.allows("count_lines")
    assert not active.allows("shell")


@pytest.mark.parametrize(
    ("model", "alias"),
    [
        ("orchestrator", "orchestrator"),
        ("delegate", "delegate"),
        ("either", "delegate"),
        (None, "delegate"),
    ],
)
def test_model_maps_to_an_alias(user_dir: Path, model: str | None, alias: str) -> None:
    write_skill(user_dir, "review", model=model)
    assert activate_skill(registry_with(user_dir), "review", "t").model_alias == alias


def test_missing_workspace_is_a_clear_error(user_dir: Path) -> None:
    write_skill(user_dir, "review", requires_context=True)
    registry = registry_with(user_dir)
    for workspace in (None, ""):
        with pytest.raises(MissingSkillContext, match="'review' requires workspace"):
            activate_skill(registry, "review", "t", workspace=workspace)
    assert activate_skill(registry, "review", "t", workspace="/ws").name == "review"


def test_every_missing_context_is_named(user_dir: Path) -> None:
    write_skill(user_dir, "review", requires_context=["workspace", "files", "dependencies"])
    with pytest.raises(MissingSkillContext) as info:
        activate_skill(registry_with(user_dir), "review", "t", workspace="/ws", files="  ")
    assert "requires files, dependencies" in str(info.value)


def test_activating_an_unknown_skill_names_it() -> None:
    with pytest.raises(UnknownSkill, match="'nope'"):
        activate_skill(SkillRegistry.load(), "nope", "t")


def test_catalog_lists_usable_skills_for_the_planner(user_dir: Path) -> None:
    write_skill(
        user_dir,
        "audit",
        description="Find security holes.\nRead-only.",
        model="orchestrator",
        allowed_tools="read_file grep_files",
        requires_context=True,
    )
    write_skill(user_dir, "explain", description="Explain a concept.", allowed_tools=[])
    registry = registry_with(user_dir)
    assert catalog(registry, workspace=True) == (
        "- audit — Find security holes. Read-only. (orchestrator model; read-only)\n"
        "- explain — Explain a concept. (either model; no tools)"
    )
    assert catalog(registry, workspace=False) == (
        "- explain — Explain a concept. (either model; no tools)"
    )


def test_catalog_is_empty_when_no_skill_fits(user_dir: Path) -> None:
    write_skill(user_dir, "audit", requires_context=True)
    assert catalog(registry_with(user_dir), workspace=False) == ""
