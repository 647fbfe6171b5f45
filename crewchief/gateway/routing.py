"""The routing table: for each role, the model that answers first, its fallbacks, and the
alternative for each profile, ranked from benchmark figures.

A benchmark file (``benchmarks.toml``: benchmarks, the task each measures, and models'
scores and prices) gives each model a quality per task: the mean of its normalised scores
(percent / 100; Elo between the benchmark's bounds). A role weighs its primary task 70 %
and its secondary task 30 %. A cost factor takes up to ``COST_WEIGHT`` off the quality of
the dearest model in proportion to its blended price. Only models the configuration can
reach take part: the specs of the aliases, their fallbacks and ``gateway.models``.

``crewchief routes refresh`` stores a dated table in the app database, where every API
instance finds it; the gateway answers from the newest one (without one, a role runs on its
alias).
"""

from __future__ import annotations

import re
import time
import tomllib
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

from crewchief.config import Settings
from crewchief.gateway.roles import ROLES
from crewchief.models.providers import parse_spec, provider_config

PRIMARY, SECONDARY = 0.7, 0.3
MISSING = 0.5  # a task without figures counts as this share of the other task's quality
_DATED = re.compile(r"^(.+?)-(?:\d{4}-\d{2}-\d{2}|\d{4}|\d{8})$")
COST_WEIGHT = 0.2
FALLBACKS = 2
# What each role needs most, then next.
ROLE_TASKS: dict[str, tuple[str, str]] = {
    "architect": ("reasoning", "coding"),
    "implementation": ("code_editing", "coding"),
    "review": ("coding", "reasoning"),
    "testing": ("coding", "code_editing"),
    "documentation": ("writing", "chat"),
    "debugger": ("agentic_coding", "reasoning"),
    "research": ("knowledge", "reasoning"),
    "general": ("chat", "knowledge"),
}
LOCAL_TYPES = ("local", "ollama")  # the personal profile's models: on this machine
# The work profile's: the big providers' own endpoints, with enterprise terms (by the spec's
# provider name: a [providers.x] of type openai pointing elsewhere is not one of them).
WORK_PROVIDERS = ("openai", "google", "vertex", "azure", "anthropic", "bedrock")


@dataclass
class RoleRoute:
    role: str
    primary: str
    fallbacks: list[str]
    profiles: dict[str, str]  # profile -> the spec that answers first for it
    reason: str
    scores: dict[str, float]  # spec -> the role's score (after the cost factor)


@dataclass
class RoutingTable:
    created: str
    source: str  # the benchmark file, and its as_of date
    roles: dict[str, RoleRoute] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"created": self.created, "source": self.source,
                "roles": {r: asdict(v) for r, v in self.roles.items()}}  # fmt: skip

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RoutingTable:
        roles = {r: RoleRoute(**v) for r, v in data["roles"].items()}
        return cls(data["created"], data["source"], roles)


def load_benchmarks(path: str | Path | None = None) -> dict[str, Any]:
    """A benchmark file (default: the snapshot shipped with the package)."""
    if path is None:
        text = resources.files("crewchief.gateway").joinpath("benchmarks.toml").read_text()
    else:
        text = Path(path).expanduser().read_text()
    data = tomllib.loads(text)
    for key in ("benchmarks", "models"):
        if not isinstance(data.get(key), dict):
            raise ValueError(f"a benchmark file needs a [{key}] table")
    return data


def _normalised(bench: dict[str, Any], value: float) -> float:
    if bench.get("scale") == "elo":
        low, high = float(bench["elo_min"]), float(bench["elo_max"])
        return min(1.0, max(0.0, (value - low) / (high - low)))
    return min(1.0, max(0.0, value / 100))


def task_quality(data: dict[str, Any], model: str) -> dict[str, float]:
    """A model's quality per task: the mean of its normalised scores on that task."""
    entry = data["models"].get(model) or {}
    per_task: dict[str, list[float]] = {}
    for name, value in (entry.get("scores") or {}).items():
        bench = data["benchmarks"].get(name)
        if bench is None or not isinstance(value, int | float):
            continue
        # A benchmark bears on its ``task``, and on any other it lists in ``tasks``.
        for task in dict.fromkeys([bench["task"], *bench.get("tasks", [])]):
            per_task.setdefault(task, []).append(_normalised(bench, float(value)))
    return {task: sum(v) / len(v) for task, v in per_task.items()}


def _price(data: dict[str, Any], model: str) -> float | None:
    entry = data["models"].get(model) or {}
    if entry.get("price_in") is None or entry.get("price_out") is None:
        return None
    return (3 * float(entry["price_in"]) + float(entry["price_out"])) / 4  # 3:1 in:out


def reachable(settings: Settings) -> list[str]:
    """Every spec the configuration can call: the aliases', their fallbacks', gateway.models."""
    specs: list[str] = []
    for cfg in settings.models.values():
        specs += [cfg.model, *cfg.fallbacks]
    specs += settings.gateway.models
    return list(dict.fromkeys(specs))


def _bench_key(data: dict[str, Any], spec: str) -> str | None:
    name = parse_spec(spec)[1]
    if name in data["models"]:
        return name
    # A dated snapshot scores as its model ("gpt-5-2025-08-07" as "gpt-5"); another model
    # whose name merely starts alike does not ("gpt-5.1", "o3-mini").
    match = _DATED.match(name)
    return match.group(1) if match and match.group(1) in data["models"] else None


def _role_scores(data: dict[str, Any], specs: list[str], role: str) -> dict[str, float]:
    primary, secondary = ROLE_TASKS[role]
    prices = {s: _price(data, k) for s in specs if (k := _bench_key(data, s)) is not None}
    dearest = max((p for p in prices.values() if p), default=0.0)
    scores: dict[str, float] = {}
    for spec in specs:
        key = _bench_key(data, spec)
        if key is None:
            continue
        quality = task_quality(data, key)
        first, second = quality.get(primary), quality.get(secondary)
        if first is None and second is None:
            continue
        # A task without figures counts at half the other one: missing evidence is no merit.
        score = PRIMARY * (first if first is not None else MISSING * (second or 0.0))
        score += SECONDARY * (second if second is not None else MISSING * (first or 0.0))
        price = prices.get(spec)
        if price and dearest:
            score -= COST_WEIGHT * price / dearest
        scores[spec] = round(score, 4)
    return scores


def _profile(settings: Settings, spec: str) -> str:
    provider = parse_spec(spec)[0]
    if provider_config(settings, provider).type in LOCAL_TYPES:
        return "personal"
    return "work" if provider in WORK_PROVIDERS else "other"


def compute(settings: Settings, data: dict[str, Any], source: str) -> RoutingTable:
    """Rank the reachable models for every role."""
    specs = reachable(settings)
    table = RoutingTable(datetime.now(UTC).isoformat(timespec="seconds"), source)
    for role in ROLES:
        scores = _role_scores(data, specs, role)
        if not scores:
            continue
        ranked = sorted(scores, key=lambda s: (-scores[s], s))
        profiles: dict[str, str] = {}
        for spec in ranked:
            profiles.setdefault(_profile(settings, spec), spec)
        profiles.pop("other", None)
        primary, secondary = ROLE_TASKS[role]
        reason = (
            f"best of {len(ranked)} reachable models on {primary} (70 %) and {secondary} (30 %),"
            f" less a cost factor: {ranked[0]} scores {scores[ranked[0]]:.3f}"
        )
        table.roles[role] = RoleRoute(
            role, ranked[0], ranked[1 : 1 + FALLBACKS], profiles, reason, scores
        )
    return table


def refreshed(settings: Settings, path: str | Path | None = None) -> RoutingTable:
    """A new table from a benchmark file (default: the shipped snapshot)."""
    data = load_benchmarks(path)
    source = f"{path or 'the shipped snapshot'} (figures as of {data.get('as_of', '?')})"
    return compute(settings, data, source)


def diff(old: RoutingTable, new: RoutingTable) -> list[str]:
    """What changed between two tables, role by role, and why."""
    lines = []
    for role in ROLES:
        a, b = old.roles.get(role), new.roles.get(role)
        if a is None and b is None:
            continue
        if a is None or b is None:
            lines.append(f"{role}: {'added' if a is None else 'removed'}")
            continue
        if a.primary != b.primary:
            was, now = b.scores.get(a.primary), b.scores.get(b.primary)
            why = f"{b.primary} {now:.3f}" + (f" against {a.primary} {was:.3f}" if was else "")
            lines.append(f"{role}: primary {a.primary} -> {b.primary} ({why})")
        if a.fallbacks != b.fallbacks:
            lines.append(f"{role}: fallbacks {a.fallbacks} -> {b.fallbacks}")
        if a.profiles != b.profiles:
            lines.append(f"{role}: profiles {a.profiles} -> {b.profiles}")
    return lines


class TableStore(Protocol):
    """Where routing tables are kept (the app database: :class:`crewchief.db.routes.RouteTables`)."""

    async def save(self, source: str, body: dict[str, Any]) -> int: ...

    async def newest_id(self) -> int | None: ...

    async def newest(self, count: int = 1) -> list[dict[str, Any]]: ...


async def save(store: TableStore, table: RoutingTable) -> int:
    return await store.save(table.source, table.to_json())


async def newest(store: TableStore, count: int = 1) -> list[RoutingTable]:
    """The newest ``count`` tables, newest first."""
    return [RoutingTable.from_json(body) for body in await store.newest(count)]


class RouteBook:
    """The newest routing table, read again when a newer one is saved (looked for at most
    every ``every`` seconds, with one cheap read)."""

    def __init__(self, store: TableStore, every: float = 30.0):
        self.store = store
        self.every = every
        self._checked = float("-inf")
        self._seen: int | None = None
        self._table: RoutingTable | None = None

    async def current(self) -> RoutingTable | None:
        now = time.monotonic()
        if now - self._checked < self.every:
            return self._table
        self._checked = now
        newest_id = await self.store.newest_id()
        if newest_id != self._seen:
            found = await newest(self.store)
            self._table = found[0] if found else None
            self._seen = newest_id
        return self._table


async def refresh_saved(settings: Settings) -> int | None:
    """Recompute the table from ``gateway.benchmarks_file`` (or the shipped snapshot) and store
    it in the app database; its number, None when no reachable model has figures."""
    from crewchief.db.migrate import app_store
    from crewchief.db.routes import RouteTables

    table = refreshed(settings, settings.gateway.benchmarks_file)
    if not table.roles:
        return None
    async with app_store(settings.resolved_database_url) as store:
        return await save(RouteTables(store), table)
