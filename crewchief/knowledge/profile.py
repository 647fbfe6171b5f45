"""Owner profiles: stated preferences, preferences learned from history, and the short
"About this user" block the gateway and the planner add to their prompts.

Stated preferences are what the owner said (languages, frameworks, verbosity, skill level,
free-text notes), checked here. Learned ones come from the owner's remembered history
(see :mod:`crewchief.knowledge._learn`), each with its evidence count, and never override
a stated one: a field the owner stated is used as stated, and learned items only fill
fields left empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

Verbosity = Literal["terse", "normal", "detailed"]
SkillLevel = Literal["beginner", "intermediate", "expert"]
MAX_ITEMS = 20
MAX_ITEM_CHARS = 40
MAX_NOTES_CHARS = 500
LIST_FIELDS = ("languages", "frameworks")
STATED_FIELDS = ("languages", "frameworks", "verbosity", "skill_level", "notes")

Item = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        min_length=1,
        max_length=MAX_ITEM_CHARS,
        pattern=r"^[^\x00-\x1f\x7f]+$",  # one line, no control characters
    ),
]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, max_length=MAX_NOTES_CHARS)]

_ITEMS = f"at most {MAX_ITEMS} names of 1-{MAX_ITEM_CHARS} characters each (one line)"


def _dedupe(items: list[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for item in items:
        if item.casefold() not in seen:
            seen.add(item.casefold())
            out.append(item)
    return out


class StatedProfile(BaseModel):
    """What an owner says about themselves (every field optional)."""

    model_config = ConfigDict(extra="forbid")

    languages: list[Item] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description=f'Programming languages you work in, e.g. `["Python"]`: {_ITEMS}.',
    )
    frameworks: list[Item] = Field(
        default_factory=list,
        max_length=MAX_ITEMS,
        description=f'Frameworks and libraries you use, e.g. `["FastAPI"]`: {_ITEMS}.',
    )
    verbosity: Verbosity | None = Field(None, description="How long answers should be.")
    skill_level: SkillLevel | None = Field(None, description="How much to explain.")
    notes: Notes | None = Field(
        None,
        description=f"Anything else models should know (at most {MAX_NOTES_CHARS} characters).",
    )

    @field_validator("languages", "frameworks")
    @classmethod
    def _once_each(cls, value: list[str]) -> list[str]:
        return _dedupe(value)

    @field_validator("notes")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @property
    def empty(self) -> bool:
        return not any(getattr(self, name) for name in STATED_FIELDS)


class ProfilePatch(BaseModel):
    """Changes to the stated preferences: the fields sent replace those stored (a list
    replaces the whole list); ``null`` clears a field; fields left out are kept."""

    model_config = ConfigDict(extra="forbid")

    languages: list[Item] | None = Field(None, max_length=MAX_ITEMS, description=_ITEMS + ".")
    frameworks: list[Item] | None = Field(None, max_length=MAX_ITEMS, description=_ITEMS + ".")
    verbosity: Verbosity | None = None
    skill_level: SkillLevel | None = None
    notes: Notes | None = Field(None, description=f"At most {MAX_NOTES_CHARS} characters.")

    def apply(self, stated: StatedProfile) -> StatedProfile:
        """``stated`` with these changes."""
        merged = stated.model_dump()
        for name in self.model_fields_set:
            value = getattr(self, name)
            merged[name] = ([] if name in LIST_FIELDS else None) if value is None else value
        return StatedProfile.model_validate(merged)


class LearnedItem(BaseModel):
    """One learned preference and the evidence for it."""

    name: str
    evidence: int = Field(description="How many remembered requests and operations show it.")
    sources: dict[str, int] = Field(
        default_factory=dict,
        description="Evidence by kind: `requests` (requests naming it), `workspaces`"
        " (operations in a workspace mostly written in it).",
    )


class LearnedProfile(BaseModel):
    """Preferences learned from the owner's remembered history."""

    languages: list[LearnedItem] = Field(default_factory=list)
    frameworks: list[LearnedItem] = Field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.languages or self.frameworks)


class Profile(BaseModel):
    """An owner's profile: stated and learned preferences."""

    owner: str | None = Field(description="Whose profile it is (null: no API key).")
    stated: StatedProfile = Field(default_factory=StatedProfile)
    learned: LearnedProfile = Field(default_factory=LearnedProfile)
    learned_at: datetime | None = Field(None, description="When `learned` was last refreshed.")
    updated_at: datetime | None = Field(None, description="When `stated` last changed.")

    def about(self) -> About | None:
        """The "About this user" block, or None when there is nothing to say."""
        return about(self.stated, self.learned)


HEADER = (
    "About this user (their stated preferences, and what their history shows). Follow them"
    " where they fit; the request itself always comes first."
)
_VERBOSITY = {
    "terse": "terse (keep answers short)",
    "normal": "normal",
    "detailed": "detailed (explain fully)",
}
_SKILL = {
    "beginner": "beginner (explain terms and steps)",
    "intermediate": "intermediate",
    "expert": "expert (skip the basics)",
}


@dataclass(frozen=True, slots=True)
class About:
    """The block added to prompts, and what it holds."""

    text: str
    stated: list[str] = field(default_factory=list)  # stated fields used
    learned: list[dict[str, Any]] = field(default_factory=list)  # learned items used

    def metadata(self) -> dict[str, Any]:
        return {"added": True, "stated": list(self.stated), "learned": list(self.learned)}


NOT_ADDED: dict[str, Any] = {"added": False, "stated": [], "learned": []}


def about(stated: StatedProfile, learned: LearnedProfile) -> About | None:
    """Render a profile; learned items fill only the list fields left unstated."""
    lines, used, from_history = [HEADER], [], []
    for name in LIST_FIELDS:
        label = name.capitalize()
        if mine := getattr(stated, name):
            lines.append(f"- {label}: {', '.join(mine)}")
            used.append(name)
        elif items := getattr(learned, name):
            shown = ", ".join(f"{i.name} ({i.evidence})" for i in items)
            lines.append(f"- {label}, learned from history (evidence count): {shown}")
            from_history += [{"field": name, "name": i.name, "evidence": i.evidence} for i in items]
    if stated.verbosity:
        lines.append(f"- Verbosity: {_VERBOSITY[stated.verbosity]}")
        used.append("verbosity")
    if stated.skill_level:
        lines.append(f"- Skill level: {_SKILL[stated.skill_level]}")
        used.append("skill_level")
    if stated.notes:
        lines.append(f"- Notes: {' '.join(stated.notes.split())}")
        used.append("notes")
    if len(lines) == 1:
        return None
    return About("\n".join(lines), used, from_history)
