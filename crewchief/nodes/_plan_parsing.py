"""Turn a planner's reply into validated tasks, repairing what can be repaired.

Repairs: JSON inside code fences or prose, a bare list of tasks, common key
spellings (``steps``, ``title``, ``dependencies``, ``activeForm``), missing
ids, a missing ``active_form`` (derived from the description). Anything that
cannot be repaired raises :class:`PlanParseError` with a message the planner
can act on when asked again.
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from crewchief.state import PlannedTask, gerund

_DESCRIPTION_KEYS = ("description", "title", "task", "name", "content")
_ACTIVE_KEYS = ("active_form", "activeForm", "active", "progress")
_DEPENDS_KEYS = ("depends_on", "dependsOn", "dependencies", "deps", "after")
_TASKS_KEYS = ("tasks", "steps", "plan", "todos")


PLAN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "required": ["summary", "tasks"],
    "properties": {
        "summary": {"type": "string"},
        "tasks": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "description", "active_form", "skill", "depends_on"],
                "properties": {
                    "id": {"type": "integer"},
                    "description": {"type": "string"},
                    "active_form": {"type": "string"},
                    "skill": {"type": ["string", "null"]},
                    "depends_on": {"type": "array", "items": {"type": "integer"}},
                },
            },
        },
    },
}
"""What a plan reply must look like; sent as structured output where supported."""


def plan_schema(skills: set[str]) -> dict[str, Any]:
    """:data:`PLAN_SCHEMA` with ``skill`` limited to these names (or null).

    Constrained decoding then cannot invent a skill, which small models otherwise do.
    """
    schema = copy.deepcopy(PLAN_SCHEMA)
    item = schema["properties"]["tasks"]["items"]["properties"]
    item["skill"] = {"anyOf": [{"type": "string", "enum": sorted(skills)}, {"type": "null"}]}
    if not skills:
        item["skill"] = {"type": "null"}
    return schema


class PlanParseError(ValueError):
    """The reply is not a usable plan; the message says why."""


def _json_candidates(text: str) -> list[Any]:
    """Every JSON value that starts at a ``{`` or ``[`` in the text, longest first."""
    decoder = json.JSONDecoder()
    found: list[tuple[int, Any]] = []
    for match in re.finditer(r"[\[{]", text):
        try:
            value, end = decoder.raw_decode(text, match.start())
        except json.JSONDecodeError:
            continue
        found.append((end - match.start(), value))
    found.sort(key=lambda pair: -pair[0])
    return [value for _, value in found]


def _task_list(value: Any) -> tuple[list[Any], str] | None:
    if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
        return value, ""
    if isinstance(value, dict):
        for key in _TASKS_KEYS:
            if isinstance(value.get(key), list):
                return value[key], str(value.get("summary") or value.get("goal") or "")
    return None


def _first(item: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        if item.get(key) not in (None, ""):
            return item[key]
    return None


def _normalize(items: list[Any]) -> list[PlannedTask]:
    tasks: list[PlannedTask] = []
    for index, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise PlanParseError(f"task {index} is not an object")
        description = _first(item, _DESCRIPTION_KEYS)
        if not isinstance(description, str) or not description.strip():
            raise PlanParseError(f"task {index} has no description")
        active = _first(item, _ACTIVE_KEYS)
        deps = _first(item, _DEPENDS_KEYS) or []
        if isinstance(deps, int | str):
            deps = [deps]
        try:
            dep_ids = [int(d) for d in deps]
        except (TypeError, ValueError):
            raise PlanParseError(f"task {index}: depends_on must be a list of task ids") from None
        raw_id = item.get("id", index)
        try:
            task_id = int(raw_id)
        except (TypeError, ValueError):
            raise PlanParseError(f"task {index}: id must be a number, got {raw_id!r}") from None
        skill = item.get("skill")
        tasks.append(
            {
                "id": task_id,
                "description": description.strip(),
                "active_form": active.strip()
                if isinstance(active, str) and active.strip()
                else gerund(description),
                "skill": skill.strip() if isinstance(skill, str) and skill.strip() else None,
                "depends_on": dep_ids,
            }
        )
    return tasks


def _renumber(tasks: list[PlannedTask]) -> list[PlannedTask]:
    ids = [t["id"] for t in tasks]
    if len(set(ids)) != len(ids):
        raise PlanParseError(f"task ids repeat: {ids}")
    mapping = {old: new for new, old in enumerate(ids, start=1)}
    for task in tasks:
        unknown = [d for d in task["depends_on"] if d not in mapping]
        if unknown:
            raise PlanParseError(f"task {task['id']} depends on unknown task(s) {unknown}")
        task["depends_on"] = sorted({mapping[d] for d in task["depends_on"]})
        task["id"] = mapping[task["id"]]
        if task["id"] in task["depends_on"]:
            raise PlanParseError(f"task {task['id']} depends on itself")
    return tasks


def _check_acyclic(tasks: list[PlannedTask]) -> None:
    deps = {t["id"]: set(t["depends_on"]) for t in tasks}
    done: set[int] = set()
    while len(done) < len(deps):
        ready = [i for i, d in deps.items() if i not in done and d <= done]
        if not ready:
            stuck = sorted(set(deps) - done)
            raise PlanParseError(f"tasks {stuck} depend on each other in a cycle")
        done.update(ready)


def _check_skills(tasks: list[PlannedTask], skills: set[str]) -> None:
    """Match each task's skill to a known one, forgiving case, spaces and underscores."""
    by_key = {re.sub(r"[\s_]+", "-", name.lower()): name for name in skills}
    for task in tasks:
        name = task["skill"]
        if name is None or name in skills:
            continue
        key = re.sub(r"[\s_]+", "-", name.strip().lower())
        if key in ("none", "null", "-"):
            task["skill"] = None
        elif key in by_key:
            task["skill"] = by_key[key]
        else:
            offered = ", ".join(sorted(skills)) or "none"
            raise PlanParseError(
                f"task {task['id']} names the unknown skill {name!r}; use one of {offered}, or null"
            )


def parse_plan(
    text: str, *, max_tasks: int, skills: set[str] | None = None
) -> tuple[list[PlannedTask], str]:
    """Parse and validate a plan. Returns ``(tasks, summary)``.

    Args:
        skills: The skill names a task may name; ``None`` accepts any.

    Raises:
        PlanParseError: no JSON plan found, no tasks, too many tasks, bad
            references, a dependency cycle or an unknown skill.
    """
    if not text or not text.strip():
        raise PlanParseError("the reply was empty")
    found = None
    for candidate in _json_candidates(text):
        found = _task_list(candidate)
        if found is not None:
            break
    if found is None:
        raise PlanParseError('no JSON object with a "tasks" list was found in the reply')
    items, summary = found
    if not items:
        raise PlanParseError("the plan has no tasks")
    if len(items) > max_tasks:
        raise PlanParseError(f"the plan has {len(items)} tasks; at most {max_tasks} are allowed")
    tasks = _renumber(_normalize(items))
    _check_acyclic(tasks)
    if skills is not None:
        _check_skills(tasks, skills)
    return tasks, summary
