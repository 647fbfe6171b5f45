"""The registry: built-ins, user overrides, lazy bodies, lookups and concurrent use."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from crewchief.config import Settings
from crewchief.skills import registry as registry_module
from crewchief.skills.registry import (
    SkillError,
    SkillRegistry,
    UnknownSkill,
    activate_skill,
    skill_registry,
)
from tests.skills.conftest import write_skill

BUILTINS = ["debugging", "documentation", "performance", "refactoring", "security-audit", "testing"]


def test_builtins_load_first_and_are_sorted() -> None:
    registry = SkillRegistry.load()
    assert registry.names() == BUILTINS
    assert [m.name for m in registry.list()] == BUILTINS
    assert all(m.source == "builtin" for m in registry.list())


def test_user_skill_with_a_builtin_name_replaces_it(user_dir: Path) -> None:
    path = write_skill(user_dir, "testing", "Our way: {task_description}\n", model="orchestrator")
    registry = SkillRegistry.load([user_dir])
    meta = registry.meta("testing")
    assert (meta.source, meta.path, meta.model) == ("user", path.resolve(), "orchestrator")
    assert [m.source for m in registry.list() if m.name == "testing"] == ["user"]
    assert registry.get("testing").body == "Our way: {task_description}\n"
    assert len(registry) == len(BUILTINS)


def test_broken_user_override_keeps_the_builtin(user_dir: Path) -> None:
    write_skill(user_dir, "testing", model="nonsense")
    registry = SkillRegistry.load([user_dir])
    assert registry.meta("testing").source == "builtin"
    assert len(registry.problems) == 1


def test_later_user_dir_wins(tmp_path: Path) -> None:
    write_skill(tmp_path / "a", "review", description="from a")
    write_skill(tmp_path / "b", "review", description="from b")
    registry = SkillRegistry.load([tmp_path / "a", tmp_path / "b"], builtins=False)
    assert registry.meta("review").description == "from b"


def test_unknown_name_error_lists_the_available_skills() -> None:
    registry = SkillRegistry.load()
    with pytest.raises(UnknownSkill) as info:
        registry.get("refactor")
    assert "'refactor'" in str(info.value)
    assert all(name in str(info.value) for name in BUILTINS)
    assert "refactor" not in registry and "refactoring" in registry


def test_body_is_read_on_get_not_kept_from_load(user_dir: Path) -> None:
    path = write_skill(user_dir, "review", "Old steps for {task_description}\n")
    registry = SkillRegistry.load([user_dir], builtins=False)
    path.write_text(path.read_text().replace("Old steps", "New steps"))
    assert registry.get("review").body == "New steps for {task_description}\n"


def test_body_is_cached_until_the_file_changes(user_dir: Path) -> None:
    path = write_skill(user_dir, "review", "One {task_description}\n")
    registry = SkillRegistry.load([user_dir], builtins=False)
    first = registry.get("review")
    assert registry.get("review") is first
    path.write_text(path.read_text().replace("One", "Two, a longer body"))
    assert registry.get("review").body.startswith("Two")


def test_body_broken_after_load_raises_naming_the_file(user_dir: Path) -> None:
    path = write_skill(user_dir, "review")
    registry = SkillRegistry.load([user_dir], builtins=False)
    path.write_text(path.read_text() + "Now with a {typo}\n")
    with pytest.raises(SkillError, match="SKILL.md: unknown placeholder {typo}"):
        registry.get("review")


def test_deleted_file_raises_naming_the_file(user_dir: Path) -> None:
    path = write_skill(user_dir, "review")
    registry = SkillRegistry.load([user_dir], builtins=False)
    path.unlink()
    with pytest.raises(SkillError, match=r"review/SKILL.md: cannot read"):
        registry.get("review")


def test_threads_get_and_activate_consistently(user_dir: Path) -> None:
    for i in range(40):
        write_skill(user_dir, f"skill-{i}", f"Skill {i} does {{task_description}}\n")
    registry = SkillRegistry.load([user_dir], builtins=False)
    start = threading.Barrier(16)

    def work(worker: int) -> list[tuple[int, int, str]]:
        start.wait()  # all threads hit the cold cache at once
        results = []
        for n in range(200):
            i = (worker * 7 + n) % 40
            active = activate_skill(registry, f"skill-{i}", f"task {n}")
            results.append((i, n, active.instructions))
        return results

    with ThreadPoolExecutor(16) as pool:
        outcomes = [item for chunk in pool.map(work, range(16)) for item in chunk]
    assert len(outcomes) == 16 * 200
    # Every activation saw its own skill's body, rendered for its own task.
    assert all(text == f"Skill {i} does task {n}" for i, n, text in outcomes)


async def test_asyncio_tasks_share_one_registry(user_dir: Path) -> None:
    write_skill(user_dir, "review", "Review {task_description}\n")
    registry = SkillRegistry.load([user_dir], builtins=False)

    async def use(n: int) -> str:
        active = await asyncio.to_thread(activate_skill, registry, "review", f"file {n}")
        return active.instructions

    results = await asyncio.gather(*(use(n) for n in range(50)))
    assert results == [f"Review file {n}" for n in range(50)]


def test_process_wide_registry_is_loaded_once_per_dirs(
    user_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_skill(user_dir, "review")
    loads = []
    real_load = SkillRegistry.load.__func__  # type: ignore[attr-defined]

    def counting_load(cls, dirs=(), *, builtins=True):  # type: ignore[no-untyped-def]
        loads.append(tuple(dirs))
        return real_load(cls, dirs, builtins=builtins)

    monkeypatch.setattr(SkillRegistry, "load", classmethod(counting_load))
    monkeypatch.setattr(registry_module, "_registries", {})
    settings = Settings(home=tmp_path / "home", skill_dirs=[user_dir])
    with ThreadPoolExecutor(8) as pool:
        registries = list(pool.map(lambda _: skill_registry(settings), range(32)))
    assert all(r is registries[0] for r in registries)
    assert "review" in registries[0]
    assert len(loads) == 1
    other = skill_registry(Settings(home=tmp_path / "home", skill_dirs=[]))
    assert other is not registries[0] and "review" not in other
