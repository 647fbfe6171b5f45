"""SQL shared by the recorder's write paths: the transaction protocol and task-row helpers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from crewchief.events import Event, EventType


class TxLike(Protocol):
    def execute(self, sql: str, params: dict[str, Any] | None = None) -> Any: ...
    def one(self, sql: str, params: dict[str, Any] | None = None) -> tuple | None: ...
    def ts(self, value: Any) -> Any: ...
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
