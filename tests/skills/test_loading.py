"""Loading SKILL.md folders: what is accepted, and how each kind of mistake is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from crewchief.skills.registry import SkillRegistry
from crewchief.tools.files import TOOL_NAMES
from tests.skills.conftest import write_skill


def load(root: Path) -> SkillRegistry:
    return SkillRegistry.load([root], builtins=False)


def only_problem(registry: SkillRegistry) -> tuple[Path, str]:
    assert len(registry.problems) == 1, registry.problems
    problem = registry.problems[0]
    return problem.path, problem.reason


def test_a_valid_skill_loads_with_defaults(user_dir: Path) -> None:
    path = write_skill(user_dir, "review")
    registry = load(user_dir)
    assert registry.problems == ()
    meta = registry.meta("review")
    assert meta.description == "The review skill."
    assert meta.model == "either"
    assert meta.allowed_tools == TOOL_NAMES  # absent means every file tool
    assert meta.requires_context == ()
    assert meta.source == "user"
    assert meta.path == path.resolve()


def test_spec_fields_and_unknown_keys_are_kept(user_dir: Path) -> None:
    write_skill(
        user_dir,
        "review",
        license="MIT",
        compatibility="Needs a Python project",
        metadata={"author": "team", "version": "1.0"},
        triggers=["review"],
        owner="qa",
    )
    meta = load(user_dir).meta("review")
    assert (meta.license, meta.compatibility) == ("MIT", "Needs a Python project")
    assert meta.metadata == {"author": "team", "version": "1.0"}
    assert meta.extra == {"triggers": ["review"], "owner": "qa"}


@pytest.mark.parametrize(
    "value",
    [
        "read_file grep_files",
        "read_file, grep_files",
        ["read_file", "grep_files"],
        ["grep_files, read_file"],
    ],
)
def test_allowed_tools_accepts_string_comma_and_list_forms(user_dir: Path, value: object) -> None:
    write_skill(user_dir, "review", allowed_tools=value)
    assert load(user_dir).meta("review").allowed_tools == ("read_file", "grep_files")


def test_unknown_tool_is_a_problem_listing_the_valid_tools(user_dir: Path) -> None:
    path = write_skill(user_dir, "review", allowed_tools="read_file Bash")
    registry = load(user_dir)
    where, reason = only_problem(registry)
    assert where == path.resolve()
    assert "Bash" in reason
    assert all(tool in reason for tool in TOOL_NAMES)
    assert "review" not in registry


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, ("workspace",)),
        (False, ()),
        (None, ()),
        (["files", "workspace"], ("workspace", "files")),
        ("dependencies", ("dependencies",)),
    ],
)
def test_requires_context_forms(user_dir: Path, value: object, expected: tuple) -> None:
    write_skill(user_dir, "review", requires_context=value)
    assert load(user_dir).meta("review").requires_context == expected


def test_name_must_match_the_folder(user_dir: Path) -> None:
    path = write_skill(user_dir, "review", name="reviewer")
    where, reason = only_problem(load(user_dir))
    assert where == path.resolve()
    assert "'reviewer'" in reason and "'review'" in reason and "folder" in reason


@pytest.mark.parametrize("name", ["Review", "-review", "review-", "re--view", "re_view", "a" * 65])
def test_invalid_names_are_problems(user_dir: Path, name: str) -> None:
    write_skill(user_dir, "folder", name=name)
    _, reason = only_problem(load(user_dir))
    assert "lowercase" in reason


MALFORMED = {
    "bad yaml": ("---\nname: [unclosed\n---\nbody\n", "invalid YAML"),
    "no frontmatter": ("# Just markdown\n", "no YAML frontmatter"),
    "unclosed frontmatter": ("---\nname: x\ndescription: y\n", "no YAML frontmatter"),
    "frontmatter not a mapping": ("---\n- a\n- b\n---\nbody\n", "mapping"),
    "missing name": ("---\ndescription: d\n---\nbody\n", "'name' is required"),
    "missing description": ("---\nname: broken\n---\nbody\n", "'description' is required"),
    "empty description": ("---\nname: broken\ndescription: '  '\n---\nbody\n", "description"),
    "bad model": ("---\nname: broken\ndescription: d\nmodel: gpt\n---\nb\n", "model 'gpt'"),
    "bad context": (
        "---\nname: broken\ndescription: d\nrequires_context: [network]\n---\nb\n",
        "network",
    ),
    "long description": (f"---\nname: broken\ndescription: {'x' * 1025}\n---\nb\n", "1024"),
    "unknown placeholder": (
        "---\nname: broken\ndescription: d\n---\nFirst line\nDo {task_descripton} now\n",
        "{task_descripton} on line 6",
    ),
}


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_malformed_skill_is_reported_and_others_still_load(user_dir: Path, kind: str) -> None:
    text, expected = MALFORMED[kind]
    broken = write_skill(user_dir, "broken", text=text)
    write_skill(user_dir, "good")
    registry = load(user_dir)
    where, reason = only_problem(registry)
    assert where == broken.resolve()
    assert expected in reason
    assert registry.names() == ["good"]


def test_all_field_problems_of_a_file_are_reported_together(user_dir: Path) -> None:
    write_skill(user_dir, "broken", "Hi {usr}\n", model="big", allowed_tools="shell")
    _, reason = only_problem(load(user_dir))
    assert "model 'big'" in reason and "shell" in reason and "{usr}" in reason


def test_too_large_file_is_a_problem(user_dir: Path) -> None:
    write_skill(user_dir, "huge", "x" * 70_000)
    _, reason = only_problem(load(user_dir))
    assert "64 kB" in reason


def test_non_utf8_file_is_a_problem(user_dir: Path) -> None:
    path = write_skill(user_dir, "latin")
    path.write_bytes(path.read_bytes() + b"caf\xe9\n")
    _, reason = only_problem(load(user_dir))
    assert "UTF-8" in reason


def test_unreadable_file_is_a_problem(user_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_skill(user_dir, "locked").resolve()
    real_open = Path.open

    def refuse(self: Path, *args, **kwargs):  # type: ignore[no-untyped-def]
        # Tests may run as root, where chmod 000 does not stop reads; refuse this one file.
        if self == path:
            raise PermissionError(13, "Permission denied")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", refuse)
    where, reason = only_problem(load(user_dir))
    assert where == path
    assert reason == "cannot read: Permission denied"


def test_folder_without_skill_md_is_a_problem(user_dir: Path) -> None:
    (user_dir / "empty").mkdir()
    (user_dir / "notes.md").write_text("not a skill folder")  # loose files are ignored
    (user_dir / ".git").mkdir()  # hidden folders are ignored
    where, reason = only_problem(load(user_dir))
    assert where == (user_dir / "empty").resolve()
    assert "no SKILL.md" in reason


def test_missing_user_dir_is_a_problem_not_a_crash(tmp_path: Path) -> None:
    registry = SkillRegistry.load([tmp_path / "nowhere"])
    where, reason = only_problem(registry)
    assert where == (tmp_path / "nowhere").resolve()
    assert "does not exist" in reason
    assert "refactoring" in registry  # the built-ins still load


def test_pointing_at_one_skill_instead_of_its_parent_is_explained(user_dir: Path) -> None:
    write_skill(user_dir, "review")
    _, reason = only_problem(load(user_dir / "review"))
    assert "parent folder" in reason


def test_braces_in_code_are_not_placeholders(user_dir: Path) -> None:
    body = (
        "Task: {task_description}\n"
        'Literal {{braces}} and a JSON example {"key": 1}.\n'
        'Inline code `f"{value}"` is fine.\n'
        "```python\n"
        'print(f"{name}")\n'
        "```\n"
        "1. A step with an indented example:\n"
        "    ~~~\n"
        "    {placeholder_like}\n"
        "    ~~~\n"
    )
    write_skill(user_dir, "review", body)
    assert load(user_dir).problems == ()
