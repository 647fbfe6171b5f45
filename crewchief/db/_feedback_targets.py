"""What a rating is about: its target found (and checked to be the caller's), and the
dimensions it is reported by, read from the target when it is rated.

- an **operation**: its route (``fast`` | ``plan``), simplicity score, and the model that
  wrote its answer (the last successful ``fast_path`` or ``synthesize`` call);
- a **task** (one version, the current one by default): ``plan``, the operation's score,
  the task's skill and model;
- a gateway **response**: its role and model, ``auto:<tier>`` for ``model: auto`` (with
  the detector's score) or ``gateway``.

The tier is that of the API key that made the target (the ``api_keys.tier`` column, when
the database has one), else of the key that rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crewchief.db.repository import ANY_OWNER
from crewchief.db.writer import Tx
from crewchief.errors import OperationNotFound, OperationStateError, ResponseNotFound, TaskNotFound

# Only an operation or task that stopped running has something to rate.
_RATABLE_OPERATION = ("completed", "failed", "cancelled", "rejected")
_RATABLE_TASK = ("completed", "failed", "cancelled")
_ANSWERING_NODES = ("fast_path", "synthesize")


@dataclass(frozen=True, slots=True)
class Target:
    """What is rated: ``kind`` is ``operation``, ``task`` or ``response``."""

    kind: str
    operation_id: str | None = None
    sequence: int | None = None
    version: int | None = None  # a task's version; None: the current one
    response_id: str | None = None


def _visible(owner: Any, scope: Any) -> bool:
    return scope is ANY_OWNER or owner == scope


def _operation(tx: Tx, operation_id: str, scope: Any) -> tuple[Any, ...]:
    row = tx.one(
        "SELECT owner, status, route, simplicity_score, api_key_id FROM operations WHERE id = :op",
        {"op": operation_id},
    )
    if row is None or not _visible(row[0], scope):
        raise OperationNotFound(f"operation {operation_id} not found")
    return row


def _answer_model(tx: Tx, operation_id: str) -> str | None:
    row = tx.one(
        "SELECT model FROM model_calls WHERE operation_id = :op AND error IS NULL"
        " AND node IN ('fast_path', 'synthesize') ORDER BY id DESC LIMIT 1",
        {"op": operation_id},
    )
    return row[0] if row else None


def _of_operation(tx: Tx, target: Target, scope: Any) -> dict[str, Any]:
    op = str(target.operation_id)
    _, status, route, score, key = _operation(tx, op, scope)
    if status not in _RATABLE_OPERATION:
        raise OperationStateError(f"operation {op} is {status}: rate it once it has ended")
    return {
        "target_id": op,
        "operation_id": op,
        "model": _answer_model(tx, op),
        "route": route,
        "simplicity_score": score,
        "key": key,
    }


def _of_task(tx: Tx, target: Target, scope: Any) -> dict[str, Any]:
    op = str(target.operation_id)
    _, _, _, score, key = _operation(tx, op, scope)
    which = "version = :v" if target.version is not None else "is_current = :cur"
    row = tx.one(
        "SELECT version, status, skill, model FROM operation_tasks"
        f" WHERE operation_id = :op AND sequence = :seq AND {which}",
        {"op": op, "seq": target.sequence, "v": target.version, "cur": tx.flag(True)},
    )
    if row is None:
        version = "" if target.version is None else f" version {target.version}"
        raise TaskNotFound(f"operation {op} has no task {target.sequence}{version}")
    version, status, skill, model = row
    if status not in _RATABLE_TASK:
        raise OperationStateError(
            f"task {target.sequence} (version {version}) of operation {op} is {status}:"
            " rate it once it has run"
        )
    return {
        "target_id": f"{op}:{target.sequence}:{version}",
        "operation_id": op,
        "task_sequence": target.sequence,
        "task_version": version,
        "model": model,
        "skill": skill,
        "route": "plan",
        "simplicity_score": score,
        "key": key,
    }


def _of_response(tx: Tx, target: Target, scope: Any) -> dict[str, Any]:
    rid = str(target.response_id)
    row = tx.one(
        "SELECT owner, api_key_id, role, model, auto_tier, simplicity_score"
        " FROM gateway_responses WHERE id = :id",
        {"id": rid},
    )
    if row is None or not _visible(row[0], scope):
        raise ResponseNotFound(f"gateway response {rid} not found")
    _, key, role, model, tier, score = row
    return {
        "target_id": rid,
        "response_id": rid,
        "role": role,
        "model": model,
        "route": f"auto:{tier}" if tier else "gateway",
        "simplicity_score": score,
        "key": key,
    }


def _has_column(tx: Tx, table: str, column: str) -> bool:
    if tx.sqlite:
        sql = "SELECT COUNT(*) FROM pragma_table_info(:table) WHERE name = :column"
    else:
        sql = (
            "SELECT COUNT(*) FROM information_schema.columns WHERE table_name = :table"
            " AND column_name = :column AND table_schema = current_schema()"
        )
    row = tx.one(sql, {"table": table, "column": column})
    return bool(row and row[0])


def key_tier(tx: Tx, key_id: str | None) -> str | None:
    """The tier of API key ``key_id``; None without a key, or before keys had tiers."""
    if key_id is None or not _has_column(tx, "api_keys", "tier"):
        return None
    row = tx.one("SELECT tier FROM api_keys WHERE id = :id", {"id": key_id})
    return row[0] if row else None


_RESOLVERS = {"operation": _of_operation, "task": _of_task, "response": _of_response}


def resolve(tx: Tx, target: Target, scope: Any, rater_key: str | None) -> dict[str, Any]:
    """The feedback columns that name ``target`` and its dimensions.

    Raises:
        OperationNotFound, TaskNotFound, ResponseNotFound: unknown, or not ``scope``'s.
        OperationStateError: the operation or task has not ended.
    """
    found = _RESOLVERS[target.kind](tx, target, scope)
    found["tier"] = key_tier(tx, found.pop("key") or rater_key)
    return found
