"""Budgets and plans: what a key or owner may use and spend, enforced call by call.

Every call that spends reserves its largest possible cost first (its input tokens and its
bounded output at the price table's prices) on every counter that limits its payer: the
key's plan, the key's own budget, the owner's budget, each per UTC day and month. The
reservation is atomic across those counters (see :mod:`crewchief.db.counters`), so calls
made at once can never take a hard budget past its limit; the call then settles its real
cost, or releases the reservation when it failed.

A payer is the API key (and its owner) a call is made for; calls made without a key are
the owner ``""``'s, which the operator can limit like any other.
"""

from __future__ import annotations

import fnmatch
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from crewchief.config import BudgetConfig, PlanConfig, Settings
from crewchief.db.budgets import NANO, BudgetRow, PayerRecord, payer_record, spent_since, to_nano
from crewchief.db.counters import Count, Counters, LocalCounters, SqlCounters, Want
from crewchief.db.writer import Writer
from crewchief.effort import Effort
from crewchief.errors import BudgetExceeded, NotAllowed

log = logging.getLogger(__name__)

PERIODS = ("day", "month")
EFFORT_ORDER: tuple[Effort, ...] = ("low", "medium", "high")


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """The UTC day or month ``now`` falls in: its start and its end."""
    if period == "day":
        start = now.replace(hour=0, minute=0, second=0, microsecond=0)
        return start, start + timedelta(days=1)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = (start + timedelta(days=32)).replace(day=1)
    return start, end


@dataclass(frozen=True, slots=True)
class Limit:
    """One cap on one counter: ``cap`` nano-dollars (``unit`` usd) or calls (a quota)."""

    unit: str  # usd | requests | operations
    scope: str  # key | owner
    subject: str
    period: str  # day | month
    cap: int
    hard: bool
    downgrade: bool
    source: str  # plan:<name> | key | owner

    def want(self, amount: int, now: datetime) -> Want:
        start, end = period_bounds(self.period, now.astimezone(UTC))
        counter = f"{self.unit}:{self.scope}:{self.subject}:{self.period}:{start:%Y-%m-%d}"
        cap = self.cap if self.hard else None
        return Want(counter, amount, cap, self.unit, self.scope, self.subject, start, end)

    def amount(self, value: int) -> float:
        return value / NANO if self.unit == "usd" else float(value)

    def describe(self) -> str:
        whose = f"key {self.subject}" if self.scope == "key" else f"owner {self.subject or '-'}"
        what = "budget" if self.unit == "usd" else f"{self.unit} quota"
        plan = f" (plan {self.source[5:]})" if self.source.startswith("plan:") else ""
        return f"the {'daily' if self.period == 'day' else 'monthly'} {what} of {whose}{plan}"


@dataclass(frozen=True, slots=True)
class PayerLimits:
    """What limits one payer: its plan and every cap on it."""

    plan_name: str | None = None
    plan: PlanConfig | None = None
    limits: tuple[Limit, ...] = ()

    def of(self, unit: str) -> list[Limit]:
        return [limit for limit in self.limits if limit.unit == unit]

    def allows(self, spec: str) -> bool:
        """Whether the plan lets calls use the model ``spec``."""
        if self.plan is None or not self.plan.models:
            return True
        return any(fnmatch.fnmatchcase(spec, pattern) for pattern in self.plan.models)

    def effort(self, effort: Effort) -> Effort:
        """``effort``, lowered to the highest the plan allows."""
        if self.plan is None or not self.plan.efforts or effort in self.plan.efforts:
            return effort
        lower = [e for e in EFFORT_ORDER[: EFFORT_ORDER.index(effort)] if e in self.plan.efforts]
        return lower[-1] if lower else min(self.plan.efforts, key=EFFORT_ORDER.index)


NO_LIMITS = PayerLimits()


def _usd_limits(
    budget: BudgetConfig | BudgetRow, scope: str, subject: str, source: str
) -> list[Limit]:
    out = []
    for period, usd in (("day", budget.daily_usd), ("month", budget.monthly_usd)):
        if usd is not None:
            out.append(Limit("usd", scope, subject, period, to_nano(usd),
                             budget.enforcement == "hard", budget.on_exceed == "downgrade",
                             source))  # fmt: skip
    return out


def payer_limits(
    settings: Settings, owner: str, key_id: str | None, rec: PayerRecord
) -> PayerLimits:
    """Every cap on a payer: its key's plan (budget and quotas), then the rows set for the key
    and for the owner."""
    limits: list[Limit] = []
    name = plan = None
    if key_id is not None and rec.key_exists:
        name = rec.tier or settings.default_plan
        plan = settings.plans.get(name) if name else None
    if plan is not None and key_id is not None:
        limits += _usd_limits(plan.budget, "key", key_id, f"plan:{name}")
        for unit in ("requests", "operations"):
            count = getattr(plan, f"{unit}_per_day")
            if count is not None:
                limits.append(Limit(unit, "key", key_id, "day", count, True, False, f"plan:{name}"))
    for row in rec.rows:
        limits += _usd_limits(row, row.scope, row.subject, row.scope)
    return PayerLimits(name, plan, tuple(limits))


@dataclass(slots=True)
class Notice:
    """A budget's spend crossed its warning share (``kind`` warning) or a soft limit
    (``kind`` exceeded)."""

    kind: str
    limit: Limit
    spent: int
    resets_at: str
    operation_id: str | None = None

    def payload(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "scope": self.limit.scope,
            "subject": self.limit.subject,
            "period": self.limit.period,
            "source": self.limit.source,
            "enforcement": "hard" if self.limit.hard else "soft",
            "limit_usd": self.limit.amount(self.limit.cap),
            "spent_usd": round(self.limit.amount(self.spent), 9),
            "resets_at": self.resets_at,
        }


@dataclass(slots=True)
class Hold:
    """A reservation of one call: settle it with the real cost, or release it."""

    budgets: Budgets
    id: str
    wants: list[Want]
    limits: list[Limit]
    operation_id: str | None = None
    notices: list[Notice] = field(default_factory=list)
    done: bool = False

    async def settle(self, usd: float) -> list[Notice]:
        """Count the call's real cost (``usd``) instead of its reservation."""
        return await self.settle_amount(to_nano(usd))

    async def settle_amount(self, amount: int) -> list[Notice]:
        """Count ``amount`` (nano-dollars, or calls for a quota) instead of the reservation."""
        if self.done:
            return []
        self.done = True
        moved = await self.budgets.counters.settle(self.id, [w.counter for w in self.wants], amount)
        self.notices = self.budgets.crossings(self, moved)
        for notice in self.notices:
            await self.budgets.notify(notice)
        return self.notices

    async def release(self) -> None:
        """The call failed or was stopped before it cost anything: drop the reservation."""
        if not self.done:
            self.done = True
            await self.budgets.counters.release(self.id, [w.counter for w in self.wants])


def _iso(moment: datetime) -> str:
    """A moment in ISO 8601, UTC, with a Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Budgets:
    """Limits per payer (cached briefly), reservations, quotas and warnings.

    Args:
        store: The app database (None: nothing persisted; counters start at 0).
        shared: Count in the database, shared by every process (default: when the
            database is PostgreSQL, i.e. scaled mode); else in this process.
    """

    def __init__(self, settings: Settings, store: Writer | None, *, shared: bool | None = None):
        self.settings = settings
        self._store = store
        shared = settings.is_postgres if shared is None else shared
        # Scaled mode: reservations on a connection and thread of their own, so a call's
        # reservation never waits behind the event writes of the process's operations.
        self._own: Writer | None = None
        if shared and store is not None:
            self._own = Writer(settings.resolved_database_url)
            self.counters: Counters = SqlCounters(self._own)
        else:
            self.counters = LocalCounters(self._seed)
        self._cache: dict[tuple[str, str | None], tuple[float, PayerLimits]] = {}
        # Called with each warning; the services turn it into an event (default: a log line).
        self.on_notice: Callable[[Notice], Awaitable[None]] | None = None

    async def close(self) -> None:
        if self._own is not None:
            await self._own.close()
            self._own = None

    async def _seed(self, want: Want) -> int:
        if self._store is None:
            return 0
        return await self._store.read(
            lambda tx: spent_since(tx, want.unit, want.scope, want.subject, want.since)
        )

    async def limits(self, owner: str | None, key_id: str | None) -> PayerLimits:
        """What limits this payer (read at most every ``limits_cache_seconds``)."""
        if self._store is None:
            return NO_LIMITS
        ident = (owner or "", key_id)
        now = time.monotonic()
        hit = self._cache.get(ident)
        if hit is not None and now - hit[0] < self.settings.budgets.limits_cache_seconds:
            return hit[1]
        rec = await payer_record(self._store, ident[0], key_id)
        found = payer_limits(self.settings, ident[0], key_id, rec)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[ident] = (now, found)
        return found

    def forget(self) -> None:
        """Read limits again on next use (after this process changed them)."""
        self._cache.clear()

    async def reserve(
        self,
        owner: str | None,
        key_id: str | None,
        usd: float,
        *,
        operation_id: str | None = None,
    ) -> Hold | None:
        """Reserve ``usd`` on every budget of the payer (None when none limits it or the
        call is free).

        Raises:
            BudgetExceeded: a hard budget has no room for it (``downgrade`` when that
                budget's owner prefers a cheaper model to a refusal).
        """
        found = await self.limits(owner, key_id)
        usd_limits = found.of("usd")
        amount = to_nano(usd)
        if not usd_limits or amount == 0:
            return None
        return await self._hold(usd_limits, amount, operation_id)

    async def _hold(self, limits: Sequence[Limit], amount: int, operation_id: str | None) -> Hold:
        now = datetime.now(UTC)
        wants = [limit.want(amount, now) for limit in limits]
        hold_id = secrets.token_hex(12)
        until = now + timedelta(seconds=self.settings.budgets.hold_seconds)
        refused = await self.counters.reserve(hold_id, wants, until)
        if refused is not None:
            index, count = refused
            raise self._exceeded(limits[index], count, amount, wants[index].period_end)
        return Hold(self, hold_id, wants, list(limits), operation_id)

    def _exceeded(self, limit: Limit, count: Count, amount: int, end: datetime) -> BudgetExceeded:
        used = count.spent + count.held
        if limit.unit == "usd":
            message = (
                f"budget exceeded: {limit.describe()} is ${limit.amount(limit.cap):.2f};"
                f" ${limit.amount(count.spent):.6f} is spent and ${limit.amount(count.held):.6f}"
                f" held by calls under way, and this call may cost up to"
                f" ${limit.amount(amount):.6f}; it resets at {_iso(end)}"
            )
        else:
            message = (
                f"quota exceeded: {limit.describe()} allows {limit.cap}; {used} used;"
                f" it resets at {_iso(end)}"
            )
        return BudgetExceeded(
            message,
            scope=limit.scope,
            subject=limit.subject,
            period=limit.period,
            limit=limit.amount(limit.cap),
            spent=round(limit.amount(count.spent), 9),
            resets_at=_iso(end),
            unit=limit.unit,
            downgrade=limit.downgrade,
        )

    async def take(self, owner: str | None, key_id: str | None, unit: str) -> None:
        """Count one gateway request or operation against the payer's quotas.

        Raises:
            BudgetExceeded: (code ``quota_exceeded``) the quota for today is used up.
        """
        quotas = (await self.limits(owner, key_id)).of(unit)
        if quotas:
            hold = await self._hold(quotas, 1, None)
            await hold.settle_amount(1)

    async def check(self, owner: str | None, key_id: str | None) -> None:
        """Refuse at once when a hard, refusing budget of the payer has nothing left (an
        operation is not started only to fail at its first call).

        Raises:
            BudgetExceeded: that budget, as :meth:`reserve` would.
        """
        limits = [lim for lim in (await self.limits(owner, key_id)).of("usd") if lim.hard]
        if not limits:
            return
        now = datetime.now(UTC)
        wants = [lim.want(0, now) for lim in limits]
        for limit, want, count in zip(limits, wants, await self.counters.read(wants), strict=True):
            if count.spent + count.held >= limit.cap and not limit.downgrade:
                raise self._exceeded(limit, count, 0, want.period_end)

    async def status(self, owner: str | None, key_id: str | None) -> list[dict[str, Any]]:
        """Each limit of the payer with its spend, what calls under way hold, and its reset."""
        found = await self.limits(owner, key_id)
        now = datetime.now(UTC)
        wants = [lim.want(0, now) for lim in found.limits]
        counts = await self.counters.read(wants) if wants else []
        out = []
        for limit, want, count in zip(found.limits, wants, counts, strict=True):
            key = "usd" if limit.unit == "usd" else "count"
            out.append({
                "unit": limit.unit, "scope": limit.scope, "subject": limit.subject,
                "period": limit.period, "source": limit.source,
                "enforcement": "hard" if limit.hard else "soft",
                "on_exceed": "downgrade" if limit.downgrade else "refuse",
                f"limit_{key}": limit.amount(limit.cap),
                f"spent_{key}": round(limit.amount(count.spent), 9),
                f"held_{key}": round(limit.amount(count.held), 9),
                f"remaining_{key}": round(max(0.0, limit.amount(limit.cap - count.spent - count.held)), 9),
                "resets_at": _iso(want.period_end),
            })  # fmt: skip
        return out

    def crossings(self, hold: Hold, moved: list[tuple[int, int]]) -> list[Notice]:
        """The warnings a settlement causes: a budget's spend crossing its warning share,
        or a soft budget's limit."""
        out = []
        share = self.settings.budgets.warn_at
        for limit, want, (before, after) in zip(hold.limits, hold.wants, moved, strict=True):
            if limit.unit != "usd":
                continue
            resets = _iso(want.period_end)
            if not limit.hard and before < limit.cap <= after:
                out.append(Notice("exceeded", limit, after, resets, hold.operation_id))
            elif before < limit.cap * share <= after:
                out.append(Notice("warning", limit, after, resets, hold.operation_id))
        return out

    async def notify(self, notice: Notice) -> None:
        log.warning(
            "budget %s: %s, $%.6f of $%.2f spent", notice.kind, notice.limit.describe(),
            notice.limit.amount(notice.spent), notice.limit.amount(notice.limit.cap),
        )  # fmt: skip
        if self.on_notice is not None:
            try:
                await self.on_notice(notice)
            except Exception:  # noqa: BLE001 - a warning that cannot be delivered is logged
                log.exception("budget notice not delivered")

    def allowed(self, found: PayerLimits, spec: str) -> None:
        """Raise when the payer's plan does not allow ``spec``.

        Raises:
            NotAllowed: naming the plan and the models it allows.
        """
        if not found.allows(spec):
            assert found.plan is not None
            raise NotAllowed(
                f"model {spec!r} is not in plan {found.plan_name!r}; it allows"
                f" {', '.join(found.plan.models)}"
            )
