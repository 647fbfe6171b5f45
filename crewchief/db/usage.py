"""Usage reports over the model-call ledger: calls, tokens and cost summed by the database,
grouped by model, role, key, owner, day, operation, task, alias, node or who paid.

Every ledger row names its owner (an operation's calls carry the operation's), so a report
for one owner reads one table through ``ix_model_calls_owner_created``, and one of an
operation through ``ix_model_calls_operation``; a report of every owner (the library's, the
keyless dev mode's) scans the ledger. Days are UTC days.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from crewchief.db._sql import UNPRICED_COUNT
from crewchief.db.repository import ANY_OWNER
from crewchief.db.writer import Tx, Writer
from crewchief.results import UsageReport, UsageRow, UsageTotals

# The grouping -> (the name in a row's ``group``, the column) pairs it adds.
_GROUPS: dict[str, tuple[tuple[str, str], ...]] = {
    "model": (("model", "model"),),
    "role": (("role", "role"),),
    "key": (("key", "api_key_id"),),
    "owner": (("owner", "owner"),),
    "day": (("day", ""),),  # an expression of created_at, per dialect
    "operation": (("operation", "operation_id"),),
    "task": (("operation", "operation_id"), ("task", "task_sequence")),
    "alias": (("alias", "alias"),),
    "node": (("node", "node"),),
    # Whose credentials paid: platform, or owner (their own stored key).
    "paid_by": (("paid_by", "paid_by"),),
}
_SUMS = (
    "COUNT(*), COUNT(error), SUM(input_tokens), SUM(cached_input_tokens), SUM(output_tokens),"
    f" SUM(reasoning_tokens), SUM(cost_usd), {UNPRICED_COUNT}"
)


def _day(tx: Tx) -> str:
    if tx.sqlite:  # stored as 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC
        return "substr(created_at, 1, 10)"
    return "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')"


def _columns(tx: Tx, group_by: Sequence[str]) -> list[tuple[str, str]]:
    """``(name, SQL expression)`` of each grouping column, each once, in the order asked."""
    out: dict[str, str] = {}
    for group in group_by:
        for name, column in _GROUPS[group]:
            out.setdefault(name, _day(tx) if name == "day" else column)
    return list(out.items())


def _where(tx: Tx, filters: dict[str, Any], owner: Any) -> tuple[str, dict[str, Any]]:
    where, params = ["1 = 1"], {}
    if owner is not ANY_OWNER:
        where.append("owner IS NULL" if owner is None else "owner = :owner")
        params["owner"] = owner
    for bound, op in (("since", ">="), ("until", "<")):
        if filters.get(bound) is not None:
            where.append(f"created_at {op} :{bound}")
            params[bound] = tx.ts(filters[bound].astimezone(UTC))
    for name, column in (
        ("model", "model"),
        ("role", "role"),
        ("operation_id", "operation_id"),
        ("key", "api_key_id"),
    ):
        if filters.get(name) is not None:
            where.append(f"{column} = :{name}")
            params[name] = filters[name]
    return " AND ".join(where), params


def _totals(values: Sequence[Any]) -> dict[str, Any]:
    n, failed, i, c, o, r, usd, unpriced = values
    return {
        "calls": n or 0,
        "failed_calls": failed or 0,
        "input_tokens": i or 0,
        "cached_input_tokens": c or 0,
        "output_tokens": o or 0,
        "reasoning_tokens": r or 0,
        "cost_usd": round(usd or 0.0, 8),
        "unpriced_calls": unpriced or 0,
    }


def _order(row: UsageRow) -> tuple[Any, ...]:
    """Days in order, then the most expensive first, then the busiest."""
    day = row.group.get("day") or ""
    rest = tuple(str(v) if v is not None else "" for v in row.group.values())
    return (day, -row.cost_usd, -row.calls, rest)


async def usage_report(
    store: Writer,
    *,
    group_by: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    model: str | None = None,
    role: str | None = None,
    operation_id: str | None = None,
    key: str | None = None,
    owner: Any = ANY_OWNER,
) -> UsageReport:
    """The ledger's calls in ``[since, until)`` that match the filters, summed per group.

    Args:
        group_by: Names of :data:`crewchief.results.USAGE_GROUPS` (checked by the caller).
        owner: Only this owner's calls (None: calls without an owner); all by default.
    """
    filters = {
        "since": since,
        "until": until,
        "model": model,
        "role": role,
        "operation_id": operation_id,
        "key": key,
    }

    def work(tx: Tx) -> list[UsageRow]:
        columns = _columns(tx, group_by)
        where, params = _where(tx, filters, owner)
        select = ", ".join([*(expr for _, expr in columns), _SUMS])
        sql = f"SELECT {select} FROM model_calls WHERE {where}"
        if columns:
            sql += " GROUP BY " + ", ".join(str(i + 1) for i in range(len(columns)))
        rows = []
        for values in tx.execute(sql, params).fetchall():
            keys = {name: values[i] for i, (name, _) in enumerate(columns)}
            totals = _totals(values[len(columns) :])
            if totals["calls"]:
                rows.append(UsageRow(group=keys, **totals))
        return sorted(rows, key=_order)

    rows = await store.read(work)
    totals = UsageTotals(
        **{
            field: sum(getattr(row, field) for row in rows)
            for field in UsageTotals.model_fields
            if field != "cost_usd"
        },
        cost_usd=round(sum(row.cost_usd for row in rows), 8),
    )
    return UsageReport(
        since=since, until=until, group_by=list(dict.fromkeys(group_by)), rows=rows, totals=totals
    )
