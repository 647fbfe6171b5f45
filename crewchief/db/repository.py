"""Read queries over the app database (writes live in :mod:`crewchief.db.recorder`).

They run as plain SQL on the store's connection, like the writes: reading an
operation back is on the hot path of every ``Crewchief.run``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from crewchief.db._sql import UNPRICED_COUNT
from crewchief.db.writer import Tx, Writer
from crewchief.errors import OperationNotFound
from crewchief.results import (
    STATUSES,
    EventRecord,
    ModelUsage,
    OperationResult,
    OperationStats,
    OperationSummary,
    Simplicity,
    TaskResult,
    TokenUsage,
)

_OPERATION_COLUMNS = (
    "id, status, request, workspace, route, route_forced, simplicity_score, simplicity_reasons,"
    " plan_text, plan_generated_at, planning_input_tokens, planning_output_tokens,"
    " planning_reasoning_tokens, answer, error, input_tokens, output_tokens, reasoning_tokens,"
    " metadata, created_at, started_at, completed_at, simplicity_tier, owner, options,"
    " planning_context"
)
_TASK_COLUMNS = (
    "sequence, description, active_form, skill, depends_on, status, result, error_message, model,"
    " input_tokens, output_tokens, reasoning_tokens, created_at, started_at, completed_at,"
    " version, is_current, instructions"
)


def _task(tx: Tx, r: tuple) -> TaskResult:
    return TaskResult(
        sequence=r[0],
        description=r[1],
        active_form=r[2],
        skill=r[3],
        depends_on=tx.parse_json(r[4]) or [],
        status=r[5],
        result=r[6],
        error=r[7],
        model=r[8],
        usage=TokenUsage(input=r[9], output=r[10], reasoning=r[11]),
        created_at=tx.parse_ts(r[12]),
        started_at=tx.parse_ts(r[13]),
        completed_at=tx.parse_ts(r[14]),
        version=r[15],
        current=bool(r[16]),
        instructions=r[17],
    )


def _tasks(tx: Tx, rows: list[tuple]) -> list[TaskResult]:
    """Current task versions in order, each with its earlier versions (newest first)."""
    current: list[TaskResult] = []
    history: dict[int, list[TaskResult]] = {}
    for row in rows:
        task = _task(tx, row)
        if task.current:
            current.append(task)
        else:
            history.setdefault(task.sequence, []).append(task)
    for task in current:
        task.history = sorted(history.get(task.sequence, []), key=lambda t: -t.version)
    return current


# Event numbers are 64-bit integers in the database: a resume point past the largest one
# (a client's Last-Event-ID can be any number) means the same as the largest.
_MAX_SEQ = 2**63 - 1


def _events(tx: Tx, operation_id: str, after_seq: int = 0) -> list[EventRecord]:
    after_seq = min(after_seq, _MAX_SEQ)
    rows = tx.execute(
        "SELECT seq, type, payload, created_at FROM operation_events"
        " WHERE operation_id = :op AND seq > :after ORDER BY seq",
        {"op": operation_id, "after": after_seq},
    ).fetchall()
    return [
        EventRecord(seq=s, type=t, payload=tx.parse_json(p), created_at=tx.parse_ts(c))
        for s, t, p, c in rows
    ]


def _load(tx: Tx, operation_id: str, include_events: bool) -> OperationResult | None:
    r = tx.one(f"SELECT {_OPERATION_COLUMNS} FROM operations WHERE id = :op", {"op": operation_id})
    if r is None:
        return None
    tasks = tx.execute(
        f"SELECT {_TASK_COLUMNS} FROM operation_tasks WHERE operation_id = :op"
        " ORDER BY sequence, version",
        {"op": operation_id},
    ).fetchall()
    usage_rows = tx.execute(
        "SELECT alias, model, node, purpose, COUNT(*), COUNT(error), SUM(input_tokens),"
        " SUM(cached_input_tokens), SUM(output_tokens), SUM(reasoning_tokens), SUM(cost_usd),"
        f" {UNPRICED_COUNT} FROM model_calls WHERE operation_id = :op"
        " GROUP BY alias, model, node, purpose ORDER BY MIN(id)",
        {"op": operation_id},
    ).fetchall()
    by_model = [
        ModelUsage(
            alias=a,
            model=m,
            node=nd,
            purpose=p,
            calls=n,
            failed_calls=f,
            input=i or 0,
            cached_input=c or 0,
            output=o or 0,
            reasoning=x or 0,
            cost_usd=round(usd or 0.0, 8),
            unpriced_calls=u or 0,
        )
        for a, m, nd, p, n, f, i, c, o, x, usd, u in usage_rows
    ]
    status = r[1]
    if status == "running":  # totals are written when the operation ends; sum the ledger until then
        usage = TokenUsage(
            input=sum(m.input for m in by_model),
            output=sum(m.output for m in by_model),
            reasoning=sum(m.reasoning for m in by_model),
        )
    else:
        usage = TokenUsage(input=r[15], output=r[16], reasoning=r[17])
    return OperationResult(
        id=r[0],
        status=status,
        request=r[2],
        workspace=r[3],
        route=r[4],
        route_forced=bool(r[5]),
        simplicity=Simplicity(score=r[6], reasons=tx.parse_json(r[7]) or [], tier=r[22]),
        plan_text=r[8],
        plan_generated_at=tx.parse_ts(r[9]),
        planning_usage=TokenUsage(input=r[10], output=r[11], reasoning=r[12]),
        answer=r[13],
        error=r[14],
        tasks=_tasks(tx, tasks),
        usage=usage,
        usage_by_model=by_model,
        cost_usd=round(sum(m.cost_usd for m in by_model), 8),
        unpriced_calls=sum(m.unpriced_calls for m in by_model),
        metadata=tx.parse_json(r[18]),
        created_at=tx.parse_ts(r[19]),
        started_at=tx.parse_ts(r[20]),
        completed_at=tx.parse_ts(r[21]),
        events=_events(tx, operation_id) if include_events else None,
        owner=r[23],
        options=tx.parse_json(r[24]),
        planning_context=tx.parse_json(r[25]),
    )


ANY_OWNER = object()


async def get_operation(
    store: Writer, operation_id: str, *, include_events: bool = False, owner: Any = ANY_OWNER
) -> OperationResult:
    """Load one operation with its tasks, usage per model and (optionally) events.

    Args:
        owner: When given, an operation of another owner is reported as missing.

    Raises:
        OperationNotFound: no operation has that id (for this owner).
    """
    result = await store.read(lambda tx: _load(tx, operation_id, include_events))
    if result is None or (owner is not ANY_OWNER and result.owner != owner):
        raise OperationNotFound(f"operation {operation_id!r} does not exist")
    return result


async def list_events(store: Writer, operation_id: str, *, after_seq: int = 0) -> list[EventRecord]:
    """Stored events of an operation with ``seq > after_seq``, in order."""
    return await store.read(lambda tx: _events(tx, operation_id, after_seq))


async def list_operations(
    store: Writer,
    *,
    status: str | None = None,
    limit: int = 20,
    before: tuple[datetime, str] | None = None,
    owner: Any = ANY_OWNER,
    route: str | None = None,
    key: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    q: str | None = None,
) -> list[OperationSummary]:
    """Newest first, each with what its model calls cost so far (one grouped query per page).

    Args:
        before: ``(created_at, id)`` of the last item of the previous page.
        owner: When given, only that owner's operations.
        route: ``fast``, ``plan``, or ``undecided`` (not routed yet).
        key: Only those the API key with this id started.
        since, until: Only those created in ``[since, until)``.
        q: Only those whose request contains this text (case-insensitive), or whose id
            starts with it.
    """

    def work(tx: Tx) -> list[OperationSummary]:
        params: dict[str, Any] = {"limit": limit, "cur": tx.flag(True)}
        where = [
            owner_sql(owner, params, "o.owner"),
            period_sql(tx, since, until, params, "o.created_at"),
        ]
        for name, value, condition in (
            ("status", status, "o.status = :status"),
            ("key", key, "o.api_key_id = :key"),
            ("route", route, "o.route IS NULL" if route == "undecided" else "o.route = :route"),
        ):
            if value:
                where.append(condition)
                params[name] = value
        if q:
            where.append(r"(LOWER(o.request) LIKE :q ESCAPE '\' OR o.id LIKE :qid ESCAPE '\')")
            params["q"] = f"%{_like(q.lower())}%"
            params["qid"] = f"{_like(q.lower())}%"
        if before is not None:
            where.append(
                "(o.created_at < :before OR (o.created_at = :before AND o.id < :before_id))"
            )
            params["before"] = tx.ts(before[0])
            params["before_id"] = before[1]
        rows = tx.execute(
            "SELECT o.id, o.status, o.request, o.route, o.created_at, o.completed_at,"
            " (SELECT COUNT(*) FROM operation_tasks t WHERE t.operation_id = o.id AND t.is_current = :cur),"
            " o.updated_at, o.api_key_id, o.simplicity_score"
            f" FROM operations o WHERE {' AND '.join(where)} ORDER BY o.created_at DESC, o.id DESC LIMIT :limit",
            params,
        ).fetchall()
        costs = _costs(tx, [row[0] for row in rows])
        return [_summary(tx, row, costs.get(row[0], 0.0)) for row in rows]

    return await store.read(work)


def _like(text: str) -> str:
    """``text`` matched literally by ``LIKE ... ESCAPE '\\'``."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def owner_sql(owner: Any, params: dict[str, Any], column: str) -> str:
    """A condition limiting rows to ``owner``'s on a nullable owner ``column`` (None: rows
    without an API key; ``1 = 1`` for every owner)."""
    if owner is ANY_OWNER:
        return "1 = 1"
    params["owner"] = owner
    return f"{column} IS NULL" if owner is None else f"{column} = :owner"


def period_sql(
    tx: Tx, since: datetime | None, until: datetime | None, params: dict[str, Any], column: str
) -> str:
    """Conditions on ``column`` for ``[since, until)`` (``1 = 1`` for all time)."""
    where = ["1 = 1"]
    for name, bound, op in (("since", since, ">="), ("until", until, "<")):
        if bound is not None:
            where.append(f"{column} {op} :{name}")
            params[name] = tx.ts(bound.astimezone(UTC))
    return " AND ".join(where)


def _costs(tx: Tx, operation_ids: list[str]) -> dict[str, float]:
    """What the model calls of each operation cost, summed: one query for a page."""
    if not operation_ids:
        return {}
    names = {f"op{i}": op for i, op in enumerate(operation_ids)}
    marks = ", ".join(f":{name}" for name in names)
    rows = tx.execute(
        f"SELECT operation_id, SUM(cost_usd) FROM model_calls WHERE operation_id IN ({marks})"
        " GROUP BY operation_id",
        names,
    ).fetchall()
    return {op: round(usd or 0.0, 8) for op, usd in rows}


def _summary(tx: Tx, row: tuple[Any, ...], cost: float) -> OperationSummary:
    op_id, status, request, route, created, completed, n, updated, key, score = row
    return OperationSummary(
        id=op_id,
        status=status,
        request=request,
        route=route,
        created_at=tx.parse_ts(created),
        completed_at=tx.parse_ts(completed),
        updated_at=tx.parse_ts(updated),
        tasks=n,
        api_key_id=key,
        simplicity_score=score,
        cost_usd=cost,
    )


async def operation_stats(
    store: Writer,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    owner: Any = ANY_OWNER,
) -> OperationStats:
    """How many operations were created in ``[since, until)``, by route and by status."""

    def work(tx: Tx) -> OperationStats:
        params: dict[str, Any] = {}
        where = [
            owner_sql(owner, params, "o.owner"),
            period_sql(tx, since, until, params, "o.created_at"),
        ]
        rows = tx.execute(
            "SELECT o.route, o.status, COUNT(*) FROM operations o"
            f" WHERE {' AND '.join(where)} GROUP BY o.route, o.status",
            params,
        ).fetchall()
        by_route = dict.fromkeys(("fast", "plan", "undecided"), 0)
        by_status = dict.fromkeys(STATUSES, 0)
        for route, status, n in rows:
            by_route[route or "undecided"] = by_route.get(route or "undecided", 0) + n
            by_status[status] = by_status.get(status, 0) + n
        total = sum(by_status.values())
        return OperationStats(
            since=since, until=until, total=total, by_route=by_route, by_status=by_status
        )

    return await store.read(work)


async def operation_head(
    store: Writer, operation_id: str
) -> tuple[Any, str, int, str | None] | None:
    """``(owner, status, last seq, last event type)`` of an operation, or None: one cheap read."""

    def work(tx: Tx) -> tuple[Any, str, int, str | None] | None:
        row = tx.one("SELECT owner, status FROM operations WHERE id = :op", {"op": operation_id})
        if row is None:
            return None
        last = tx.one(
            "SELECT seq, type FROM operation_events WHERE operation_id = :op"
            " ORDER BY seq DESC LIMIT 1",
            {"op": operation_id},
        )
        return row[0], row[1], last[0] if last else 0, last[1] if last else None

    return await store.read(work)


@dataclass(frozen=True)
class Replay:
    """What a stream of an operation's events starts from: one read (see :func:`replay`)."""

    owner: Any
    status: str
    events: list[EventRecord]  # the stored events after the point asked for, in order
    last_seq: int  # the newest stored event's seq (0: none)
    last_type: str | None


async def replay(store: Writer, operation_id: str, *, after: int = 0) -> Replay | None:
    """The operation's owner and status, its stored events with ``seq > after`` and its
    newest event, in one read; None for an unknown operation."""

    def work(tx: Tx) -> Replay | None:
        row = tx.one("SELECT owner, status FROM operations WHERE id = :op", {"op": operation_id})
        if row is None:
            return None
        events = _events(tx, operation_id, after)
        if events:
            last = (events[-1].seq, events[-1].type)
        else:
            last = tx.one(
                "SELECT seq, type FROM operation_events WHERE operation_id = :op"
                " ORDER BY seq DESC LIMIT 1",
                {"op": operation_id},
            ) or (0, None)
        return Replay(row[0], row[1], events, last[0], last[1])

    return await store.read(work)


async def event_heads(store: Writer, operation_ids: list[str]) -> dict[str, int]:
    """The highest stored event seq of each operation (operations without events are left out)."""
    if not operation_ids:
        return {}

    def work(tx: Tx) -> dict[str, int]:
        heads: dict[str, int] = {}
        for i in range(0, len(operation_ids), 500):
            chunk = operation_ids[i : i + 500]
            names = {f"op{j}": op for j, op in enumerate(chunk)}
            marks = ", ".join(f":{name}" for name in names)
            rows = tx.execute(
                "SELECT operation_id, MAX(seq) FROM operation_events"
                f" WHERE operation_id IN ({marks}) GROUP BY operation_id",
                names,
            ).fetchall()
            heads.update({op: seq for op, seq in rows})
        return heads

    return await store.read(work)


async def open_operation_counts(store: Writer) -> dict[tuple[str, str], int]:
    """``{(status, route): count}`` of the operations that have not ended."""

    def work(tx: Tx) -> dict[tuple[str, str], int]:
        rows = tx.execute(
            "SELECT status, route, COUNT(*) FROM operations"
            " WHERE status IN ('pending', 'running', 'awaiting_approval') GROUP BY status, route"
        ).fetchall()
        return {(status, route or "none"): n for status, route, n in rows}

    return await store.read(work)
