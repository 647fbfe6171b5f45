"""SQL shared by the recorder's write paths: the transaction protocol and task-row helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from crewchief.db.models import utcnow
from crewchief.events import Event, EventType
from crewchief.state import RouteDecision

if TYPE_CHECKING:
    from crewchief.models.types import CallRecord

# Events that start another run of an operation; each run ends with its own terminal event.
_RUN_EVENTS = (str(EventType.OPERATION_RESUMED), str(EventType.TASK_RERUN))


class TxLike(Protocol):
    def execute(self, sql: str, params: dict[str, Any] | None = None) -> Any: ...
    def one(self, sql: str, params: dict[str, Any] | None = None) -> tuple | None: ...
    def ts(self, value: Any) -> Any: ...
    def parse_ts(self, value: Any) -> Any: ...
    def json(self, value: Any) -> Any: ...
    def flag(self, value: bool) -> Any: ...
    def append(
        self, op: str, type_: EventType, payload: dict[str, Any], key: str, now: Any
    ) -> Event | None: ...


class WriterLike(Protocol):
    async def run(self, work: Callable[[Any], Any]) -> Any: ...
    def forget(self, op: str) -> None: ...
    async def close(self) -> None: ...


def round_key(key: str, plan_round: int) -> str:
    """An event key within a planning round: round 1 keeps the plain key."""
    return key if plan_round <= 1 else f"{key}:r{plan_round}"


def task_key(tx: TxLike, name: str, op: str, seq: int) -> str:
    """``name:seq`` for a task's first version, ``name:seq.vN`` for a re-run's."""
    row = tx.one(
        "SELECT version FROM operation_tasks WHERE operation_id = :op AND sequence = :seq"
        " AND is_current = :cur",
        {"op": op, "seq": seq, "cur": tx.flag(True)},
    )
    version = row[0] if row else 1
    return f"{name}:{seq}" if version == 1 else f"{name}:{seq}.v{version}"


CURRENT_TASK = " AND is_current = :cur"


def insert_tasks(tx: TxLike, op: str, tasks: list[dict[str, Any]], now: Any) -> None:
    """Insert a plan's tasks as ``pending`` version 1 (existing rows are kept)."""
    for t in tasks:
        tx.execute(
            "INSERT INTO operation_tasks (operation_id, sequence, version, is_current, description,"
            " active_form, skill, depends_on, status, input_tokens, output_tokens, reasoning_tokens,"
            " created_at) VALUES (:op, :seq, 1, :cur, :description, :active_form, :skill, :deps,"
            " 'pending', 0, 0, 0, :now) ON CONFLICT (operation_id, sequence, version) DO NOTHING",
            {
                "op": op,
                "seq": t["id"],
                "cur": tx.flag(True),
                "description": t["description"],
                "active_form": t["active_form"],
                "skill": t.get("skill"),
                "deps": tx.json(t.get("depends_on", [])),
                "now": tx.ts(now),
            },
        )


def route_fields(decision: Any) -> RouteDecision:
    """A route decision as plain data: a :class:`RouteDecision`, or the detector's ``Decision``."""
    d = decision if isinstance(decision, dict) else decision.as_dict()
    return {
        "route": d["route"],
        "score": d["score"],
        "tier": d["tier"],
        "reasons": list(d["reasons"]),
        "forced": bool(d["forced"]),
    }


def record_route(tx: TxLike, op: str, decision: RouteDecision) -> Event | None:
    """Store the route on the operation and append its ``route.decided`` event."""
    d = decision
    tx.execute(
        "UPDATE operations SET route = :route, route_forced = :forced, simplicity_score = :score,"
        " simplicity_reasons = :reasons, simplicity_tier = :tier WHERE id = :op",
        {
            "op": op,
            "route": d["route"],
            "forced": tx.flag(d["forced"]),
            "score": d["score"],
            "reasons": tx.json(d["reasons"]),
            "tier": d["tier"],
        },
    )
    return tx.append(op, EventType.ROUTE_DECIDED, dict(d), "route.decided", utcnow())


def run_count(tx: TxLike, op: str) -> int:
    """How many times the operation was started again (resumed, or a task re-run)."""
    row = tx.one(
        "SELECT COUNT(*) FROM operation_events WHERE operation_id = :op AND type IN (:a, :b)",
        {"op": op, "a": _RUN_EVENTS[0], "b": _RUN_EVENTS[1]},
    )
    return row[0] if row else 0


def resume_count(tx: TxLike, op: str) -> int:
    row = tx.one(
        "SELECT COUNT(*) FROM operation_events WHERE operation_id = :op AND type = :type",
        {"op": op, "type": str(EventType.OPERATION_RESUMED)},
    )
    return row[0] if row else 0


_CALL_COLUMNS = (
    "operation_id, node, task_sequence, alias, purpose, role, model, effort, input_tokens,"
    " cached_input_tokens, output_tokens, reasoning_tokens, cost_usd, cost_source, duration_ms,"
    " error, paid_by, owner, api_key_id, created_at"
)
_CALL_VALUES = (
    ":op, :node, :task, :alias, :purpose, :role, :model, :effort, :i, :c, :o, :r, :usd, :source,"
    " :ms, :error, :paid"
)
# A call outside any operation says whose it is; an operation's calls are its owner's and
# its key's (read in the same statement: the row is written in the operation's transaction).
_INSERT_CALL = (
    f"INSERT INTO model_calls ({_CALL_COLUMNS}) VALUES ({_CALL_VALUES}, :owner, :key, :now)"
)
_INSERT_OPERATION_CALL = (
    f"INSERT INTO model_calls ({_CALL_COLUMNS}) VALUES ({_CALL_VALUES},"
    " COALESCE(:owner, (SELECT owner FROM operations WHERE id = :of)),"
    " COALESCE(:key, (SELECT api_key_id FROM operations WHERE id = :kf)), :now)"
)


# How many of the ledger rows summed are of models with no price.
UNPRICED_COUNT = "SUM(CASE WHEN cost_source = 'unpriced' THEN 1 ELSE 0 END)"


def insert_call(tx: TxLike, record: CallRecord) -> None:
    """One ledger row: the attempt's tokens and cost, and who made it."""
    info, usage = record.info, record.usage
    tx.execute(
        _INSERT_CALL if info.operation_id is None else _INSERT_OPERATION_CALL,
        {
            "op": info.operation_id,
            # The same value again, each use its own parameter (PostgreSQL types each use).
            "of": info.operation_id,
            "kf": info.operation_id,
            "node": info.node,
            "task": info.task,
            "alias": record.alias,
            "purpose": info.purpose,
            "role": info.role,
            "model": record.model,
            "effort": record.effort,
            "i": usage.input,
            "c": usage.cached_input,
            "o": usage.output,
            "r": usage.reasoning,
            "usd": record.cost.usd,
            "source": record.cost.source,
            "ms": record.duration_ms,
            "error": record.error,
            "paid": record.paid_by,
            "owner": info.owner,
            "key": info.api_key_id,
            "now": tx.ts(utcnow()),
        },
    )
