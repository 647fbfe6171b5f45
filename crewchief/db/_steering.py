"""Transactions for steering an operation: the plan-approval wait, a reviewer's decision, a re-run.

Each function returns the work for :meth:`Recorder._write` (a callable run in one
transaction that returns the events it appended, and a value where the caller needs one).
"""

from __future__ import annotations

from typing import Any

from crewchief.db._sql import CURRENT_TASK, TxLike, insert_tasks, round_key
from crewchief.db.models import utcnow
from crewchief.errors import OperationStateError
from crewchief.events import EventType

# An operation that ended any way but ``rejected`` can re-run a task.
RERUNNABLE = ("completed", "failed", "cancelled")


def awaiting_approval(op: str, *, plan_round: int, tasks: list[dict[str, Any]], text: str) -> Any:
    """The plan waits for a reviewer: status ``awaiting_approval``, an event, the lease given up."""

    def work(tx: TxLike) -> list:
        payload = {"round": plan_round, "tasks": tasks, "text": text}
        key = round_key("plan.awaiting_approval", plan_round)
        event = tx.append(op, EventType.PLAN_AWAITING_APPROVAL, payload, key, utcnow())
        # The node runs again when the decision arrives: only its first run waits.
        if event is not None:
            tx.execute(
                "UPDATE operations SET status = 'awaiting_approval', updated_at = :now,"
                " lease_holder = NULL, lease_expires_at = NULL"
                " WHERE id = :op AND status = 'running'",
                {"op": op, "now": tx.ts(utcnow())},
            )
        return [event]

    return work


def plan_reviewed(
    op: str,
    *,
    plan_round: int,
    action: str,
    tasks: list[dict[str, Any]] | None = None,
    text: str | None = None,
    feedback: str | None = None,
) -> Any:
    """Record a reviewer's decision once; an edit replaces the (never run) tasks.

    Returns:
        False when this round's decision was already recorded (nothing changed).
    """
    now = utcnow()

    def work(tx: TxLike) -> tuple[list, bool]:
        payload: dict[str, Any] = {"round": plan_round, "action": action}
        if feedback is not None:
            payload["feedback"] = feedback
        if tasks is not None:
            payload["tasks"] = tasks
        key = round_key("plan.reviewed", plan_round)
        event = tx.append(op, EventType.PLAN_REVIEWED, payload, key, now)
        if event is None:
            return [], False
        if action != "reject":
            tx.execute(
                "UPDATE operations SET status = 'running', updated_at = :now"
                " WHERE id = :op AND status = 'awaiting_approval'",
                {"op": op, "now": tx.ts(now)},
            )
        if action == "edit" and tasks is not None:
            tx.execute("DELETE FROM operation_tasks WHERE operation_id = :op", {"op": op})
            insert_tasks(tx, op, tasks, now)
            tx.execute(
                "UPDATE operations SET plan_text = :text WHERE id = :op",
                {"op": op, "text": text},
            )
        return [event], True

    return work


def task_rerun(
    op: str,
    *,
    sequence: int,
    affected: list[int],
    description: str | None,
    instructions: str | None,
) -> Any:
    """Start a new version of ``sequence`` and of the tasks in ``affected`` (its dependents).

    The current rows become history; the new ones are ``pending`` copies (with
    the new description and instructions for ``sequence``). The operation is
    ``running`` again, its answer and error cleared.

    Returns:
        The new version of each re-run task.
    """
    now = utcnow()

    def work(tx: TxLike) -> tuple[list, dict[int, int]]:
        row = tx.one("SELECT status FROM operations WHERE id = :op", {"op": op})
        if row is None or row[0] not in RERUNNABLE:
            # Checked in the transaction: of two re-runs at once, only one starts.
            status = row[0] if row else "missing"
            raise OperationStateError(f"operation {op} is {status}: it cannot re-run a task")
        versions: dict[int, int] = {}
        for seq in [sequence, *affected]:
            row = tx.one(
                "SELECT version, description, active_form, skill, depends_on, instructions"
                " FROM operation_tasks WHERE operation_id = :op AND sequence = :seq" + CURRENT_TASK,
                {"op": op, "seq": seq, "cur": tx.flag(True)},
            )
            if row is None:
                continue
            version, desc, active_form, skill, deps, old_instructions = row
            if seq == sequence:
                desc = description or desc
                old_instructions = instructions if instructions is not None else old_instructions
            tx.execute(
                "UPDATE operation_tasks SET is_current = :no WHERE operation_id = :op"
                " AND sequence = :seq AND version = :v",
                {"op": op, "seq": seq, "v": version, "no": tx.flag(False)},
            )
            tx.execute(
                "INSERT INTO operation_tasks (operation_id, sequence, version, is_current,"
                " description, instructions, active_form, skill, depends_on, status,"
                " input_tokens, output_tokens, reasoning_tokens, created_at) VALUES (:op, :seq,"
                " :v, :cur, :desc, :ins, :af, :skill, :deps, 'pending', 0, 0, 0, :now)",
                {
                    "op": op,
                    "seq": seq,
                    "v": version + 1,
                    "cur": tx.flag(True),
                    "desc": desc,
                    "ins": old_instructions,
                    "af": active_form,
                    "skill": skill,
                    "deps": deps if isinstance(deps, str) else tx.json(deps),
                    "now": tx.ts(now),
                },
            )
            versions[seq] = version + 1
        tx.execute(
            "UPDATE operations SET status = 'running', answer = NULL, error = NULL,"
            " completed_at = NULL, updated_at = :now WHERE id = :op",
            {"op": op, "now": tx.ts(now)},
        )
        payload = {
            "sequence": sequence,
            "version": versions.get(sequence),
            "dependents": affected,
            "description": description,
            "instructions": instructions,
        }
        key = f"task.rerun:{sequence}.v{versions.get(sequence)}"
        return [tx.append(op, EventType.TASK_RERUN, payload, key, now)], versions

    return work
