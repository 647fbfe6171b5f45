"""Satisfaction reports over the ratings: count, mean score and share positive per group,
and how ratings relate to the simplicity score.

Everything is summed by the database (SQLite or PostgreSQL), Pearson's r included (from
its sums), so a report costs one pass over the period's ratings whatever their number.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from crewchief.db.feedback import period_sql, scope_sql
from crewchief.db.repository import ANY_OWNER
from crewchief.db.writer import Tx, Writer
from crewchief.results import (
    FeedbackGroup,
    FeedbackRow,
    FeedbackSummary,
    PathScores,
    SimplicityFeedback,
)

# A grouping -> its column.
_COLUMNS = {
    "role": "role",
    "model": "model",
    "skill": "skill",
    "route": "route",
    "tier": "tier",
    "kind": "target_kind",
}
# Routes of answers the simplicity detector sent down the fast path, and of planned ones.
FAST_ROUTES = ("fast", "auto:fast")
PLANNED_ROUTES = ("plan", "auto:balanced", "auto:deep")
_SUMS = "COUNT(*), AVG(score), SUM(CASE WHEN score > 0.5 THEN 1 ELSE 0 END), COUNT(correction)"
_PEARSON = (
    "SELECT COUNT(*), SUM(simplicity_score), SUM(score), SUM(simplicity_score * simplicity_score),"
    " SUM(score * score), SUM(simplicity_score * score) FROM feedback WHERE {where}"
    " AND simplicity_score IS NOT NULL"
)


def _group(values: Sequence[Any]) -> dict[str, Any]:
    n, mean, positive, corrections = values
    if not n:
        return FeedbackGroup().model_dump()
    return {
        "count": n,
        "mean_score": round(float(mean), 4),
        "positive_share": round((positive or 0) / n, 4),
        "corrections": corrections or 0,
    }


def pearson(n: int, sx: float, sy: float, sxx: float, syy: float, sxy: float) -> float | None:
    """Pearson's r from the sums of x, y, x², y² and xy; None when it is undefined (fewer
    than 3 pairs, or x or y does not vary)."""
    if n < 3:
        return None
    vx, vy = n * sxx - sx * sx, n * syy - sy * sy
    if vx <= 1e-12 or vy <= 1e-12:
        return None
    return round(max(-1.0, min(1.0, (n * sxy - sx * sy) / math.sqrt(vx * vy))), 4)


def _simplicity(tx: Tx, where: str, params: dict[str, Any]) -> SimplicityFeedback:
    sums = tx.one(_PEARSON.format(where=where), params) or (0, None, None, None, None, None)
    n = sums[0] or 0
    r = pearson(n, *(float(v or 0) for v in sums[1:])) if n else None
    # Routes as parameters: ``auto:fast`` in the SQL text would read as one on PostgreSQL.
    routes = {f"route{i}": r for i, r in enumerate((*FAST_ROUTES, *PLANNED_ROUTES))}
    names = [f":{name}" for name in routes]
    fast, every = ", ".join(names[: len(FAST_ROUTES)]), ", ".join(names)
    rows = tx.execute(
        f"SELECT CASE WHEN route IN ({fast}) THEN 'fast' ELSE 'planned' END, {_SUMS}"
        f" FROM feedback WHERE {where} AND route IN ({every}) GROUP BY 1",
        {**params, **routes},
    ).fetchall()
    paths = {path: FeedbackGroup(**_group(values)) for path, *values in rows}
    return SimplicityFeedback(correlation=r, n=n, by_path=PathScores(**paths))


async def feedback_summary(
    store: Writer,
    *,
    by: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    owner: Any = ANY_OWNER,
) -> FeedbackSummary:
    """Ratings given (or last changed) in ``[since, until)``, ``owner``'s or everyone's,
    per value of ``by`` (one of :data:`crewchief.results.FEEDBACK_GROUPS`, checked by the
    caller), with the totals and the simplicity block."""

    def work(tx: Tx) -> FeedbackSummary:
        params: dict[str, Any] = {}
        where = (
            f"{scope_sql(owner, params)} AND {period_sql(tx, since, until, params, 'updated_at')}"
        )
        totals = tx.one(f"SELECT {_SUMS} FROM feedback WHERE {where}", params)
        rows: list[FeedbackRow] = []
        if by is not None:
            column = _COLUMNS[by]
            found = tx.execute(
                f"SELECT {column}, {_SUMS} FROM feedback WHERE {where} GROUP BY {column}", params
            ).fetchall()
            rows = [FeedbackRow(group=value, **_group(values)) for value, *values in found]
            rows.sort(key=lambda row: (-row.count, row.group is None, str(row.group)))
        return FeedbackSummary(
            by=by,
            since=since,
            until=until,
            rows=rows,
            totals=FeedbackGroup(**_group(totals or (0, None, 0, 0))),
            simplicity=_simplicity(tx, where, params),
        )

    return await store.read(work)
