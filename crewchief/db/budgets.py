"""Budgets in the app database: the limits set per key and owner, what a key's plan is,
what a subject spent so far in a period (seeded from the ledger), and the counters of
scaled mode, where every process shares one count.

Amounts are integers: nano-dollars for money (a call of ten tokens still costs a whole
number of them), plain counts for quotas. Integers add up the same in SQLite, PostgreSQL
and Python, so a counter never drifts from the sum of what was settled on it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crewchief.db.models import utcnow
from crewchief.db.writer import Tx, Writer
from crewchief.errors import InvalidRequest

NANO = 1_000_000_000  # nano-dollars per dollar
SCOPES = ("key", "owner")
ENFORCEMENTS = ("hard", "soft")
ON_EXCEED = ("refuse", "downgrade")
SETTERS = ("operator", "owner")


def to_nano(usd: float) -> int:
    """Dollars as nano-dollars, rounded up: a reservation never comes out short."""
    return math.ceil(usd * NANO - 1e-6) if usd > 0 else 0


@dataclass(frozen=True, slots=True)
class BudgetRow:
    """A limit set for one key or owner (``subject``); None: no limit for that period."""

    scope: str
    subject: str
    daily_usd: float | None
    monthly_usd: float | None
    enforcement: str = "hard"
    on_exceed: str = "refuse"
    set_by: str = "owner"
    updated_at: datetime | None = None

    def public(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "subject": self.subject,
            "daily_usd": self.daily_usd,
            "monthly_usd": self.monthly_usd,
            "enforcement": self.enforcement,
            "on_exceed": self.on_exceed,
            "set_by": self.set_by,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
        }


def check_row(row: BudgetRow) -> BudgetRow:
    """The row, or an error naming the field that is wrong."""
    problems = []
    if row.scope not in SCOPES:
        problems.append(("scope", f"expected one of {list(SCOPES)}, got {row.scope!r}"))
    if len(row.subject) > 64:
        problems.append(("subject", "expected at most 64 characters"))
    for name in ("daily_usd", "monthly_usd"):
        value = getattr(row, name)
        if value is not None and not (math.isfinite(value) and 0 <= value <= 1e9):
            problems.append((name, f"expected a number of dollars from 0 to 1e9, got {value!r}"))
    if row.enforcement not in ENFORCEMENTS:
        problems.append(("enforcement", f"expected one of {list(ENFORCEMENTS)}"))
    if row.on_exceed not in ON_EXCEED:
        problems.append(("on_exceed", f"expected one of {list(ON_EXCEED)}"))
    if problems:
        details = [{"path": p, "message": m} for p, m in problems]
        raise InvalidRequest(f"{problems[0][0]}: {problems[0][1]}", details)
    return row


_COLUMNS = "scope, subject, daily_usd, monthly_usd, enforcement, on_exceed, set_by, updated_at"


def _row(tx: Tx, r: tuple) -> BudgetRow:
    return BudgetRow(*r[:7], updated_at=tx.parse_ts(r[7]))


async def put_budget(store: Writer, row: BudgetRow) -> BudgetRow:
    """Set (or replace) the limits of one key or owner."""
    check_row(row)
    now = utcnow()

    def work(tx: Tx) -> BudgetRow:
        params = {
            "scope": row.scope,
            "subject": row.subject,
            "daily": row.daily_usd,
            "monthly": row.monthly_usd,
            "enf": row.enforcement,
            "exceed": row.on_exceed,
            "by": row.set_by,
            "now": tx.ts(now),
        }
        tx.execute(
            "INSERT INTO budgets (scope, subject, daily_usd, monthly_usd, enforcement, on_exceed,"
            " set_by, created_at, updated_at) VALUES (:scope, :subject, :daily, :monthly, :enf,"
            " :exceed, :by, :now, :now) ON CONFLICT (scope, subject) DO UPDATE SET"
            " daily_usd = :daily, monthly_usd = :monthly, enforcement = :enf,"
            " on_exceed = :exceed, set_by = :by, updated_at = :now",
            params,
        )
        return _row(tx, tx.one(f"SELECT {_COLUMNS} FROM budgets WHERE scope = :scope"
                               " AND subject = :subject", params))  # fmt: skip

    return await store.run(work)


async def delete_budget(store: Writer, scope: str, subject: str) -> bool:
    """Remove the limits of one key or owner; whether there were any."""

    def work(tx: Tx) -> bool:
        cur = tx.execute(
            "DELETE FROM budgets WHERE scope = :scope AND subject = :subject",
            {"scope": scope, "subject": subject},
        )
        return cur.rowcount > 0

    return await store.run(work)


async def get_budget(store: Writer, scope: str, subject: str) -> BudgetRow | None:
    def work(tx: Tx) -> BudgetRow | None:
        r = tx.one(
            f"SELECT {_COLUMNS} FROM budgets WHERE scope = :scope AND subject = :subject",
            {"scope": scope, "subject": subject},
        )
        return _row(tx, r) if r else None

    return await store.read(work)


@dataclass(frozen=True, slots=True)
class PayerRecord:
    """What the database says of a payer: its key's plan and the rows that limit it."""

    tier: str | None
    key_exists: bool
    rows: tuple[BudgetRow, ...]


async def payer_record(store: Writer, owner: str, key_id: str | None) -> PayerRecord:
    """The key's plan and the budget rows of the key and of its owner, in one read."""

    def work(tx: Tx) -> PayerRecord:
        tier, exists = None, False
        if key_id is not None:
            r = tx.one("SELECT tier FROM api_keys WHERE id = :k", {"k": key_id})
            exists = r is not None
            tier = r[0] if r else None
        found = tx.execute(
            f"SELECT {_COLUMNS} FROM budgets WHERE (scope = 'owner' AND subject = :o)"
            " OR (scope = 'key' AND subject = :k)",
            {"o": owner, "k": key_id or ""},
        ).fetchall()
        return PayerRecord(tier, exists, tuple(_row(tx, r) for r in found))

    return await store.read(work)


# -- what was spent before this process counted -----------------------------------------

# The ledger's spend of one subject since a moment: the platform's spend only (calls made
# with an owner's own credentials are billed to them by the provider).
_SPENT = {
    "usd": "SELECT COALESCE(SUM(cost_usd), 0) FROM model_calls WHERE {who}"
    " AND created_at >= :since AND paid_by = 'platform'",
    # Gateway requests a model answered (its answering call; not rewrites or summaries).
    "requests": "SELECT COUNT(*) FROM model_calls WHERE {who} AND created_at >= :since"
    " AND node = 'gateway' AND error IS NULL AND purpose = 'gateway:' || role",
    "operations": "SELECT COUNT(*) FROM operations WHERE {who} AND created_at >= :since",
}


def spent_sql(unit: str, scope: str, subject: str) -> str:
    if scope == "key":
        who = "api_key_id = :s"
    else:  # calls made without an API key have no owner: their subject is ""
        who = "owner = :s" if subject else "owner IS NULL"
    return _SPENT[unit].format(who=who)


def spent_since(tx: Tx, unit: str, scope: str, subject: str, since: datetime) -> int:
    """What the ledger holds for a subject since ``since``: nano-dollars, or a count."""
    value = tx.one(spent_sql(unit, scope, subject), {"s": subject, "since": tx.ts(since)})[0] or 0
    return to_nano(float(value)) if unit == "usd" else int(value)
