"""Plan replies: what is repaired, what is refused and how the refusal reads."""

from __future__ import annotations

import json

import pytest

from crewchief.nodes._plan_parsing import PlanParseError, parse_plan
from crewchief.state import gerund, plan_text


def test_clean_plan() -> None:
    tasks, summary = parse_plan(
        '{"summary": "s", "tasks": [{"id": 1, "description": "Run the build", "active_form": "Running the build"},'
        ' {"id": 2, "description": "Fix errors", "active_form": "Fixing errors", "depends_on": [1], "skill": "debugging"}]}',
        max_tasks=5,
    )
    assert summary == "s"
    assert tasks[1] == {
        "id": 2,
        "description": "Fix errors",
        "active_form": "Fixing errors",
        "skill": "debugging",
        "depends_on": [1],
    }


def test_fenced_json_in_prose_with_other_key_names_and_ids() -> None:
    reply = 'Sure! Here is the plan:\n```json\n[{"id": 10, "title": "Write tests"}, {"id": 20, "title": "Ship", "dependencies": [10]}]\n```\nGood luck.'
    tasks, _ = parse_plan(reply, max_tasks=5)
    assert [(t["id"], t["description"], t["active_form"], t["depends_on"]) for t in tasks] == [
        (1, "Write tests", "Writing tests", []),
        (2, "Ship", "Shipping", [1]),
    ]


@pytest.mark.parametrize(
    ("reply", "error"),
    [
        ("", "the reply was empty"),
        ("I would refactor it.", 'no JSON object with a "tasks" list was found in the reply'),
        ('{"tasks": []}', "the plan has no tasks"),
        ('{"tasks": [{"id": 1}]}', "task 1 has no description"),
        (
            '{"tasks": [{"id": 1, "description": "a", "depends_on": [7]}]}',
            "task 1 depends on unknown task(s) [7]",
        ),
        (
            '{"tasks": [{"id": 1, "description": "a", "depends_on": [2]}, {"id": 2, "description": "b", "depends_on": [1]}]}',
            "tasks [1, 2] depend on each other in a cycle",
        ),
        (
            '{"tasks": [{"id": 1, "description": "a", "depends_on": [1]}]}',
            "task 1 depends on itself",
        ),
        (
            '{"tasks": [{"id": 1, "description": "a"}, {"id": 1, "description": "b"}]}',
            "task ids repeat: [1, 1]",
        ),
    ],
)
def test_refusals_explain_themselves(reply: str, error: str) -> None:
    with pytest.raises(PlanParseError) as exc:
        parse_plan(reply, max_tasks=5)
    assert str(exc.value) == error


def test_too_many_tasks() -> None:
    reply = '{"tasks": [' + ",".join(f'{{"description": "t{i}"}}' for i in range(6)) + "]}"
    with pytest.raises(PlanParseError, match="the plan has 6 tasks; at most 5 are allowed"):
        parse_plan(reply, max_tasks=5)


@pytest.mark.parametrize(
    ("description", "active"),
    [
        ("Run the build", "Running the build"),
        ("Write docs", "Writing docs"),
        ("Add tests", "Adding tests"),
        ("Tie it up", "Tying it up"),
        ("Update README", "Updating README"),
        ("42 things", "Working on: 42 things"),
    ],
)
def test_gerund(description: str, active: str) -> None:
    assert gerund(description) == active


def test_plan_text() -> None:
    tasks, summary = parse_plan(
        '{"summary": "Two steps", "tasks": [{"description": "A"}, {"description": "B", "depends_on": [1], "skill": "testing"}]}',
        max_tasks=5,
    )
    assert plan_text(tasks, summary) == "Two steps\n1. A\n2. B (after 1; skill: testing)"


def test_skills_are_matched_forgivingly_and_unknown_ones_explained() -> None:
    from crewchief.nodes._plan_parsing import plan_schema

    text = json.dumps(
        {
            "tasks": [
                {"description": "Audit it", "skill": "Security_Audit"},
                {"description": "Test it", "skill": "none"},
            ]
        }
    )
    tasks, _ = parse_plan(text, max_tasks=5, skills={"security-audit", "testing"})
    assert [t["skill"] for t in tasks] == ["security-audit", None]
    bad = json.dumps({"tasks": [{"description": "Do magic", "skill": "wizardry"}]})
    with pytest.raises(
        PlanParseError,
        match="unknown skill 'wizardry'; use one of security-audit, testing, or null",
    ):
        parse_plan(bad, max_tasks=5, skills={"security-audit", "testing"})
    skill = plan_schema({"testing"})["properties"]["tasks"]["items"]["properties"]["skill"]
    assert skill == {"anyOf": [{"type": "string", "enum": ["testing"]}, {"type": "null"}]}
