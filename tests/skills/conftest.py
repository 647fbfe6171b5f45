"""Helpers for writing SKILL.md folders in a temporary directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

DEFAULT_BODY = "Do this: {task_description}\n"


def write_skill(
    root: Path,
    folder: str,
    body: str = DEFAULT_BODY,
    *,
    text: str | None = None,
    **fields: Any,
) -> Path:
    """Write ``root/folder/SKILL.md`` and return its path.

    Frontmatter defaults to a valid ``name`` (the folder) and ``description``; keyword
    arguments add or replace keys (``allowed_tools`` is written as ``allowed-tools``, and a
    value of None drops the key). ``text`` writes the file verbatim instead.
    """
    path = root / folder / "SKILL.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    if text is None:
        front: dict[str, Any] = {"name": folder, "description": f"The {folder} skill."}
        front.update({k.replace("allowed_tools", "allowed-tools"): v for k, v in fields.items()})
        front = {k: v for k, v in front.items() if v is not None}
        text = f"---\n{yaml.safe_dump(front, sort_keys=False)}---\n{body}"
    path.write_text(text, encoding="utf-8")
    return path
