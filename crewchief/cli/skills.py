"""``crewchief skills ...``: list the skills the registry loaded, show one."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2
_SUMMARY_CHARS = 80


def add_parser(sub: Any) -> None:
    """Add ``skills list`` and ``skills show`` to the ``crewchief`` subcommands."""
    skills = sub.add_parser("skills", help="skills: list the loaded ones, show one")
    skills_sub = skills.add_subparsers(dest="skills_command", metavar="ACTION", required=True)
    ls = skills_sub.add_parser(
        "list", help="built-in and user skills, and the files that failed to load"
    )
    ls.add_argument("--json", action="store_true")
    show = skills_sub.add_parser("show", help="one skill's frontmatter and instructions")
    show.add_argument("name", help="e.g. refactoring (see: crewchief skills list)")
    show.add_argument("--json", action="store_true")


def run(settings: Any, args: argparse.Namespace) -> int:
    """Run ``crewchief skills ACTION``; returns the exit code.

    Skills that failed to load are reported on stderr but do not fail the command; an
    unknown name given to ``show`` exits with 2.
    """
    from rich.console import Console

    from crewchief.skills.registry import skill_registry

    err = Console(stderr=True, soft_wrap=True)
    registry = skill_registry(settings)
    if args.skills_command == "list":
        _print_problems(err, registry.problems)
        if args.json:
            _print_json(
                {
                    "skills": [_meta_dict(m) for m in registry.list()],
                    "problems": [
                        {"path": str(p.path), "reason": p.reason} for p in registry.problems
                    ],
                }
            )
        else:
            _print_table(registry)
        return EXIT_OK
    return _show(registry, args.name, args.json, err)


def _show(registry: Any, name: str, as_json: bool, err: Any) -> int:
    from crewchief.skills.registry import UnknownSkill

    try:
        skill = registry.get(name)
    except UnknownSkill as exc:
        err.print(f"error: {exc}", markup=False, highlight=False)
        # A skill that failed to load is "unknown" too; say why rather than leave it a mystery.
        _print_problems(err, [p for p in registry.problems if name in p.path.parts])
        return EXIT_USAGE
    if as_json:
        _print_json({**_meta_dict(skill.meta), "body": skill.body})
        return EXIT_OK
    for key, value in _meta_dict(skill.meta).items():
        if value in (None, {}, []):
            continue
        if isinstance(value, list):
            value = " ".join(value)
        elif isinstance(value, dict):
            value = json.dumps(value, ensure_ascii=False, default=str)
        print(f"{key}: {value}")
    print()
    print(skill.body.strip("\n"))
    return EXIT_OK


def _print_problems(err: Any, problems: Any) -> None:
    for problem in problems:
        err.print(f"problem: {problem}", style="yellow", markup=False, highlight=False)


def _meta_dict(meta: Any) -> dict[str, Any]:
    return {
        "name": meta.name,
        "description": meta.description,
        "model": meta.model,
        "allowed-tools": list(meta.allowed_tools),
        "requires_context": list(meta.requires_context),
        "source": meta.source,
        "path": str(meta.path),
        "license": meta.license,
        "compatibility": meta.compatibility,
        "metadata": dict(meta.metadata),
        "extra": dict(meta.extra),
    }


def _print_json(data: Any) -> None:
    # Plain json rather than Rich: scripts get exactly one JSON document, never wrapped.
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def _print_table(registry: Any) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    out = Console(soft_wrap=True)
    if not len(registry):
        out.print("no skills", style="dim")
        return
    table = Table("name", "model", "tools", "source", "description", box=None)
    table.columns[0].no_wrap = True
    for meta in registry.list():
        cells = (
            meta.name,
            meta.model,
            meta.tools_label,
            meta.source,
            _summary(meta.description),
        )
        # Text cells: a description with [brackets] must not be read as Rich markup.
        table.add_row(*(Text(c) for c in cells))
    out.print(table)


def _summary(description: str) -> str:
    """The gist of a description for a table cell (``show`` prints all of it).

    Skill descriptions usually open with a summary, then a colon or a full stop, then
    detail: keep the summary, and cut at a word if it is still long.
    """
    text = " ".join(description.split())
    gist = text.split(". ", 1)[0].split(": ", 1)[0].rstrip(".")
    if len(gist) <= _SUMMARY_CHARS:
        return gist
    return gist[: _SUMMARY_CHARS - 1].rsplit(" ", 1)[0].rstrip(",;") + "…"
