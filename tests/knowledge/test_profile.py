"""Profiles: stated preferences are checked, learned ones come with their evidence and never
override stated ones, and the block prompts get says only what there is to say."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from crewchief.knowledge._learn import learn, named_in, workspace_languages
from crewchief.knowledge.profile import (
    LearnedProfile,
    ProfilePatch,
    StatedProfile,
    about,
)


def test_stated_preferences_are_checked_and_tidied() -> None:
    stated = StatedProfile(
        languages=[" Python ", "python", "Go"], verbosity="terse", notes="  prefers pytest  "
    )
    assert stated.languages == ["Python", "Go"]  # trimmed, each once
    assert stated.notes == "prefers pytest"
    for bad, field in [
        ({"verbosity": "chatty"}, "verbosity"),
        ({"skill_level": "guru"}, "skill_level"),
        ({"languages": [""]}, "languages"),
        ({"languages": ["x" * 41]}, "languages"),
        ({"languages": ["two\nlines"]}, "languages"),
        ({"languages": [f"l{i}" for i in range(21)]}, "languages"),
        ({"frameworks": "FastAPI"}, "frameworks"),
        ({"notes": "n" * 501}, "notes"),
        ({"colour": "blue"}, "colour"),
    ]:
        with pytest.raises(ValidationError) as refused:
            StatedProfile.model_validate(bad)
        assert refused.value.errors()[0]["loc"][0] == field, bad


def test_a_patch_changes_only_the_fields_it_sends_and_null_clears() -> None:
    stated = StatedProfile(languages=["Python"], frameworks=["Django"], verbosity="terse")
    patched = ProfilePatch.model_validate({"frameworks": ["FastAPI"], "verbosity": None}).apply(
        stated
    )
    assert patched == StatedProfile(languages=["Python"], frameworks=["FastAPI"])
    assert ProfilePatch.model_validate({"languages": None}).apply(stated).languages == []


def test_requests_name_languages_and_frameworks() -> None:
    languages, frameworks = named_in("Port utils.py to TypeScript and add a FastAPI route")
    assert languages == {"Python", "TypeScript"}
    assert frameworks == {"FastAPI"}
    # Words that only look like names do not count.
    assert named_in("Go ahead and react to the express delivery event") == (set(), set())


def test_learning_counts_evidence_and_keeps_only_what_repeats(tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    (ws / "pkg").mkdir(parents=True)
    for name in ("a.py", "b.py", "pkg/c.py", "pkg/d.py", "run.sh"):
        (ws / name).write_text("x\n")
    (ws / "node_modules").mkdir()
    for i in range(20):  # vendored: not the owner's code
        (ws / "node_modules" / f"m{i}.js").write_text("x\n")
    assert workspace_languages(str(ws)) == ("Python", "Shell")
    learned = learn(
        ["Add a pytest for the parser", "Fix the flaky pytest", "Write it in Rust"],
        [str(ws), str(ws), ""],
    )
    assert learned["languages"] == [
        {"name": "Python", "evidence": 2, "sources": {"workspaces": 2}},
        {"name": "Shell", "evidence": 2, "sources": {"workspaces": 2}},
    ]  # Rust was named once: not enough
    assert learned["frameworks"] == [{"name": "pytest", "evidence": 2, "sources": {"requests": 2}}]
    # The same history always teaches the same.
    assert learn(["Add a pytest", "Fix the pytest"], [str(ws)] * 2) == learn(
        ["Add a pytest", "Fix the pytest"], [str(ws)] * 2
    )


def test_the_block_says_what_is_stated_and_fills_gaps_from_history() -> None:
    learned = LearnedProfile.model_validate(
        {
            "languages": [{"name": "Go", "evidence": 4, "sources": {"requests": 4}}],
            "frameworks": [{"name": "Gin", "evidence": 3, "sources": {"requests": 3}}],
        }
    )
    assert about(StatedProfile(), LearnedProfile()) is None  # nothing to say: no block
    block = about(StatedProfile(languages=["Python"], skill_level="expert"), learned)
    assert block is not None
    assert "About this user" in block.text
    assert "- Languages: Python" in block.text and "Go" not in block.text  # stated wins
    assert "- Frameworks, learned from history (evidence count): Gin (3)" in block.text
    assert "expert" in block.text
    assert block.metadata() == {
        "added": True,
        "stated": ["languages", "skill_level"],
        "learned": [{"field": "frameworks", "name": "Gin", "evidence": 3}],
    }
