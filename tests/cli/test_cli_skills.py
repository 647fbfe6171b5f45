"""``crewchief skills list`` and ``crewchief skills show``, run through the real entry point."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from crewchief import cli
from tests.skills.conftest import write_skill


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """Run ``crewchief --home H ARGS`` with the given user skill folders; (code, out, err)."""
    monkeypatch.chdir(tmp_path)  # no stray ./crewchief.toml
    monkeypatch.delenv("CREWCHIEF_CONFIG", raising=False)

    def invoke(*args: str, dirs: list[Path] = ()) -> tuple[int, str, str]:
        monkeypatch.setenv("CREWCHIEF_SKILL_DIRS", os.pathsep.join(str(d) for d in dirs))
        code = cli.main(["--home", str(tmp_path / "home"), "skills", *args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke


def test_list_shows_builtins_and_user_skills(run, user_dir: Path) -> None:
    write_skill(user_dir, "review", description="Review a diff.", allowed_tools="read_file")
    code, out, err = run("list", dirs=[user_dir])
    assert code == 0
    for name in ("debugging", "refactoring", "security-audit", "review"):
        assert name in out
    review = next(line for line in out.splitlines() if line.strip().startswith("review"))
    assert "either" in review and "read_file" in review and "user" in review
    assert "Review a diff" in review
    assert err == ""


def test_list_reports_problems_on_stderr_and_still_succeeds(run, user_dir: Path) -> None:
    broken = write_skill(user_dir, "broken", model="huge")
    write_skill(user_dir, "review")
    code, out, err = run("list", dirs=[user_dir, user_dir.parent / "missing"])
    assert code == 0
    assert "review" in out and "broken" not in out
    assert f"{broken.resolve()}: model 'huge' is invalid" in err
    assert "missing: skill folder does not exist" in err


def test_list_json(run, user_dir: Path) -> None:
    write_skill(user_dir, "testing", description="Our testing.", requires_context=True)
    write_skill(user_dir, "broken", text="no frontmatter\n")
    code, out, _ = run("list", "--json", dirs=[user_dir])
    assert code == 0
    data = json.loads(out)
    skills = {s["name"]: s for s in data["skills"]}
    assert skills["testing"]["source"] == "user"
    assert skills["testing"]["requires_context"] == ["workspace"]
    assert skills["security-audit"]["model"] == "orchestrator"
    assert "write_file" not in skills["security-audit"]["allowed-tools"]
    assert [p["path"] for p in data["problems"]] == [
        str((user_dir / "broken" / "SKILL.md").resolve())
    ]
    assert "no YAML frontmatter" in data["problems"][0]["reason"]


def test_show_prints_frontmatter_and_body(run) -> None:
    code, out, _ = run("show", "security-audit")
    assert code == 0
    assert "name: security-audit" in out
    assert "model: orchestrator" in out
    assert "allowed-tools: read_file list_files grep_files" in out
    assert "source: builtin" in out
    assert "Task: {task_description}" in out  # the template, not a rendering
    assert "SECURITY AUDIT REPORT" in out


def test_show_json(run, user_dir: Path) -> None:
    write_skill(user_dir, "review", "Body {task_description}\n", owner="qa")
    code, out, _ = run("show", "review", "--json", dirs=[user_dir])
    assert code == 0
    data = json.loads(out)
    assert data["name"] == "review"
    assert data["body"] == "Body {task_description}\n"
    assert data["extra"] == {"owner": "qa"}


def test_show_unknown_name_exits_2_listing_available(run, user_dir: Path) -> None:
    write_skill(user_dir, "broken", model="huge")
    code, out, err = run("show", "broken", dirs=[user_dir])
    assert code == 2
    assert out == ""
    assert "unknown skill 'broken'" in err and "refactoring" in err
    assert "model 'huge' is invalid" in err  # why it is unknown
