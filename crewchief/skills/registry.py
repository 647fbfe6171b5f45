"""The skill registry: SKILL.md folders loaded once, activated per task.

A skill is a folder ``<name>/SKILL.md``: YAML frontmatter (the public Agent Skills keys plus
crewchief's ``model`` and ``requires_context``) and a markdown body that is a prompt template.
Built-ins ship in this package; user folders listed in ``Settings.skill_dirs`` are loaded after
them, and a user skill with a built-in's name replaces it.

Loading validates every file but keeps only the frontmatter; a body is read when a skill is
first used (:meth:`SkillRegistry.get`) and cached until the file changes. A malformed skill is
recorded in :attr:`SkillRegistry.problems` and never stops the others from loading.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Literal

from crewchief.errors import CrewchiefError
from crewchief.skills import _parse
from crewchief.tools.files import TOOL_NAMES
from crewchief.tools.mcp_names import allows, is_mcp_name

if TYPE_CHECKING:
    from crewchief.config import Settings

BUILTIN_DIR = Path(__file__).resolve().parent
SKILL_FILE = "SKILL.md"
_BODY_CACHE_SIZE = 32

Model = Literal["orchestrator", "delegate", "either"]
Source = Literal["builtin", "user"]


class SkillError(CrewchiefError):
    """A skill file is malformed or unreadable; the message names the file and the reason."""

    code = "invalid_skill"


class UnknownSkill(SkillError):
    """No skill has this name; the message lists the available ones."""

    code = "unknown_skill"


class MissingSkillContext(SkillError):
    """A skill was activated without context it declares in ``requires_context``."""

    code = "skill_context_missing"


@dataclass(frozen=True, slots=True, kw_only=True)
class SkillMeta:
    """A skill's frontmatter: what is kept in memory for every loaded skill."""

    name: str
    description: str
    model: Model = "either"
    allowed_tools: tuple[str, ...] = TOOL_NAMES
    requires_context: tuple[str, ...] = ()
    path: Path
    source: Source
    license: str | None = None
    compatibility: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, compare=False)
    extra: Mapping[str, Any] = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        # Read-only views, so a shared registry cannot be changed through one caller's copy.
        object.__setattr__(self, "metadata", MappingProxyType(dict(self.metadata)))
        object.__setattr__(self, "extra", MappingProxyType(dict(self.extra)))

    @property
    def tools_label(self) -> str:
        """The allowed tools in a few words, e.g. 'all tools', 'all except write_file' or
        'read_file, mcp:time/*' (MCP tools are always named)."""
        mcp = [t for t in self.allowed_tools if is_mcp_name(t)]
        files = [t for t in self.allowed_tools if not is_mcp_name(t)]
        left_out = [t for t in TOOL_NAMES if t not in files]
        if not left_out:
            label = "all file tools" if mcp else "all tools"
        elif not files:
            label = "" if mcp else "no tools"
        elif len(left_out) < len(files):
            label = "all except " + ", ".join(left_out)
        else:
            label = ", ".join(files)
        return ", ".join(([label] if label else []) + mcp)


@dataclass(frozen=True, slots=True)
class Skill:
    """A skill with its body: the prompt template its instructions are rendered from."""

    meta: SkillMeta
    body: str

    @property
    def name(self) -> str:
        return self.meta.name


@dataclass(frozen=True, slots=True)
class SkillProblem:
    """A skill (or skill folder) that could not be loaded, and why."""

    path: Path
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True, slots=True)
class ActiveSkill:
    """A skill bound to one task: rendered instructions, model alias and allowed tools."""

    name: str
    instructions: str
    model_alias: Literal["orchestrator", "delegate"]
    allowed_tools: frozenset[str]

    def allows(self, tool_name: str) -> bool:
        """Whether the task may call this tool (``mcp:NAME/tool`` also by ``mcp:NAME/*``);
        anything not listed is refused."""
        return tool_name in self.allowed_tools or (
            is_mcp_name(tool_name) and allows(self.allowed_tools, tool_name)
        )


class SkillRegistry:
    """Skills by name. Safe to share between threads and asyncio tasks.

    Build one with :meth:`load` (or :func:`skill_registry` for the process-wide one).
    """

    def __init__(
        self, skills: Mapping[str, SkillMeta] | None = None, problems: Iterable[SkillProblem] = ()
    ):
        self._metas: dict[str, SkillMeta] = dict(sorted((skills or {}).items()))
        self.problems: tuple[SkillProblem, ...] = tuple(problems)
        self._lock = threading.Lock()
        # name -> ((mtime_ns, size) of the file when read, skill)
        self._bodies: OrderedDict[str, tuple[tuple[int, int], Skill]] = OrderedDict()

    @classmethod
    def load(cls, dirs: Iterable[str | Path] = (), *, builtins: bool = True) -> SkillRegistry:
        """Load the built-in skills, then each folder of user skills in order.

        Args:
            dirs: Folders holding one ``<name>/SKILL.md`` folder per skill. A later skill with
                the same name replaces an earlier one (a user skill replaces a built-in).
            builtins: Whether to load the skills shipped with crewchief first.

        Returns:
            The registry; skills that failed to load are in its ``problems``.
        """
        roots: list[tuple[Path, Source]] = [(BUILTIN_DIR, "builtin")] if builtins else []
        roots += [(Path(d).expanduser().resolve(), "user") for d in dirs]
        found: dict[str, SkillMeta] = {}
        problems: list[SkillProblem] = []
        for root, source in roots:
            for item in _scan(root, source):
                if isinstance(item, SkillProblem):
                    problems.append(item)
                else:
                    found[item.name] = item
        return cls(found, problems)

    def names(self) -> list[str]:
        """Names of the loaded skills, sorted."""
        return list(self._metas)

    def meta(self, name: str) -> SkillMeta:
        """A skill's frontmatter without reading its body.

        Raises:
            UnknownSkill: no skill has this name.
        """
        meta = self._metas.get(name)
        if meta is None:
            available = ", ".join(self._metas) or "(none)"
            raise UnknownSkill(f"unknown skill {name!r}; available skills: {available}")
        return meta

    def get(self, name: str) -> Skill:
        """A skill with its body, read from disk on first use and again when the file changes.

        Raises:
            UnknownSkill: no skill has this name.
            SkillError: the file can no longer be read or its body became invalid.
        """
        meta = self.meta(name)
        # One lock for the whole lookup: bodies are at most 64 kB, so holding it is brief,
        # and two threads never read the same file for the same cache slot.
        with self._lock:
            try:
                st = meta.path.stat()
            except OSError as exc:
                raise SkillError(f"{meta.path}: cannot read: {exc.strerror or exc}") from None
            stamp = (st.st_mtime_ns, st.st_size)
            cached = self._bodies.get(name)
            if cached is not None and cached[0] == stamp:
                self._bodies.move_to_end(name)
                return cached[1]
            skill = Skill(meta, _read_body(meta.path))
            self._bodies[name] = (stamp, skill)
            if len(self._bodies) > _BODY_CACHE_SIZE:
                self._bodies.popitem(last=False)
            return skill

    def __contains__(self, name: object) -> bool:
        return name in self._metas

    def __len__(self) -> int:
        return len(self._metas)

    def usable(self, *, workspace: bool) -> list[SkillMeta]:
        """The skills an operation can use: without a workspace, those not requiring one."""
        return [m for m in self.list() if workspace or "workspace" not in m.requires_context]

    def list(self) -> list[SkillMeta]:
        """Every loaded skill's frontmatter, sorted by name."""
        return list(self._metas.values())


def _scan(root: Path, source: Source) -> Iterator[SkillMeta | SkillProblem]:
    """The skills of one folder, and a problem for each that cannot be loaded."""
    if not root.is_dir():
        reason = "is not a folder" if root.exists() else "skill folder does not exist"
        yield SkillProblem(root, reason)
        return
    if (root / SKILL_FILE).is_file():
        # A common slip: pointing skill_dirs at one skill rather than at the folder of skills.
        yield SkillProblem(
            root, "holds a SKILL.md itself; list its parent folder (one folder per skill) instead"
        )
        return
    try:
        children = sorted(root.iterdir())
    except OSError as exc:
        yield SkillProblem(root, f"cannot list the folder: {exc.strerror or exc}")
        return
    for child in children:
        # Hidden and private folders (.git, __pycache__, _drafts) are not skills.
        if not child.is_dir() or child.name.startswith((".", "_")):
            continue
        path = child / SKILL_FILE
        if not path.is_file():
            yield SkillProblem(child, f"no {SKILL_FILE} in this folder")
            continue
        try:
            yield _read_meta(path, source)
        except (OSError, ValueError) as exc:
            yield SkillProblem(path, _reason(exc))


def _read_meta(path: Path, source: Source) -> SkillMeta:
    text = _parse.read_skill_file(path)
    fields, body, body_line = _parse.split_frontmatter(text)
    reasons: list[str] = []
    values: dict[str, Any] = {}
    try:
        values = _parse.parse_fields(fields, path.parent.name)
    except ValueError as exc:
        reasons.append(str(exc))
    # The body is checked now so a typo shows at start-up, but it is not kept in memory.
    try:
        _parse.check_placeholders(body, body_line)
    except ValueError as exc:
        reasons.append(str(exc))
    if reasons:
        raise ValueError("; ".join(reasons))
    return SkillMeta(**values, path=path, source=source)


def _read_body(path: Path) -> str:
    try:
        text = _parse.read_skill_file(path)
        _, body, body_line = _parse.split_frontmatter(text)
        _parse.check_placeholders(body, body_line)
    except (OSError, ValueError) as exc:
        raise SkillError(f"{path}: {_reason(exc)}") from None
    return body


def _reason(exc: OSError | ValueError) -> str:
    if isinstance(exc, OSError):
        return f"cannot read: {exc.strerror or exc}"
    return str(exc)


_registries: dict[tuple[Path, ...], SkillRegistry] = {}
_registries_lock = threading.Lock()


def skill_registry(settings: Settings) -> SkillRegistry:
    """The process-wide registry for these settings' skill folders, loaded on first call.

    Loading happens once per distinct list of folders; later calls (from any thread) get
    the same registry. Restart the process to pick up new or changed frontmatter.
    """
    key = tuple(Path(d).expanduser().resolve() for d in settings.skill_dirs)
    with _registries_lock:
        registry = _registries.get(key)
        if registry is None:
            registry = _registries[key] = SkillRegistry.load(key)
        return registry


def activate_skill(
    registry: SkillRegistry,
    name: str,
    task_description: str,
    *,
    request: str = "",
    workspace: str | Path | None = None,
    files: str = "",
    dependencies: str = "",
) -> ActiveSkill:
    """Bind a skill to one task: render its instructions and fix its model and tools.

    Args:
        registry: Where the skill is looked up.
        name: The skill's name.
        task_description: What the task must do; fills ``{task_description}``.
        request: The user's whole request; fills ``{request}``.
        workspace: The workspace root, or None when the operation has none.
        files: Files relevant to the task, as text; fills ``{files}``.
        dependencies: Results of the tasks this one depends on; fills ``{dependencies}``.

    Raises:
        UnknownSkill: no skill has this name.
        MissingSkillContext: the skill requires context that was not given.
        SkillError: the skill's file can no longer be read.
    """
    meta = registry.meta(name)
    given = {
        "workspace": str(workspace) if workspace else "",
        "files": files,
        "dependencies": dependencies,
    }
    missing = [c for c in meta.requires_context if not given[c].strip()]
    if missing:
        raise MissingSkillContext(
            f"skill {name!r} requires {', '.join(missing)}, which this task does not have"
            + (" (run the operation with a workspace)" if "workspace" in missing else "")
        )
    values = {"task_description": task_description, "request": request, **given}
    # An empty value would leave a dangling label ("Files:") that cheap models misread.
    filled = {k: v.strip() or "(none)" for k, v in values.items()}
    return ActiveSkill(
        name=name,
        instructions=_parse.render(registry.get(name).body, filled).strip(),
        model_alias="orchestrator" if meta.model == "orchestrator" else "delegate",
        allowed_tools=frozenset(meta.allowed_tools),
    )


def catalog(registry: SkillRegistry, *, workspace: bool) -> str:
    """One line per skill usable in this context, for the planner's prompt.

    Args:
        registry: The skills to list.
        workspace: Whether the operation has a workspace; skills requiring one are left out
            when it has not.

    Returns:
        Lines like ``- testing — Write tests ... (delegate model; writes files)``, or "" when no
        skill is usable.
    """
    lines = [
        f"- {meta.name} — {' '.join(meta.description.split())} "
        f"({meta.model} model; {_access(meta.allowed_tools)})"
        for meta in registry.usable(workspace=workspace)
    ]
    return "\n".join(lines)


def _access(tools: tuple[str, ...]) -> str:
    # The planner needs to know whether a skill's task can change files, not each file tool;
    # MCP tools are named, since they reach beyond the workspace.
    mcp = [t for t in tools if is_mcp_name(t)]
    if not tools:
        return "no tools"
    files = "writes files" if "write_file" in tools else "read-only"
    return f"{files}; MCP tools {', '.join(mcp)}" if mcp else files
