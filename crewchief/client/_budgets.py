"""The facade's budget calls: who may set which limits, and the checks before a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from crewchief.db import budgets as rows
from crewchief.db.budgets import BudgetRow
from crewchief.db.writer import Writer
from crewchief.errors import InvalidRequest, OperationStateError
from crewchief.runtime.budgets import Budgets


class BudgetLocked(OperationStateError):
    """An owner tried to change a limit the operator set."""

    code = "budget_locked"


async def admit_operation(
    budgets: Budgets, owner: str | None, key_id: str | None, models: Mapping[str, str] | None
) -> None:
    """Refuse a new operation its payer cannot run: a model its plan does not allow, a hard
    budget with nothing left, or no operation left in today's quota.

    Raises:
        NotAllowed: a model of ``models`` is not in the plan.
        BudgetExceeded: see :meth:`Budgets.check` and :meth:`Budgets.take`.
    """
    found = await budgets.limits(owner, key_id)
    for spec in (models or {}).values():
        budgets.allowed(found, spec)
    await budgets.check(owner, key_id)
    await budgets.take(owner, key_id, "operations")


async def set_limits(
    store: Writer, budgets: Budgets, row: BudgetRow, *, by_owner: bool
) -> BudgetRow:
    """Set a key's or owner's limits. An owner (``by_owner``) cannot replace the
    operator's.

    Raises:
        InvalidRequest: a field is invalid.
        BudgetLocked: the operator set this subject's limits.
    """
    rows.check_row(row)
    if by_owner:
        current = await rows.get_budget(store, row.scope, row.subject)
        if current is not None and current.set_by == "operator":
            raise BudgetLocked(
                f"the {row.scope} budget of {row.subject or '-'} was set by the operator;"
                " only the operator (the CLI or an admin key) can change it"
            )
    saved = await rows.put_budget(store, row)
    budgets.forget()
    return saved


async def clear_limits(
    store: Writer, budgets: Budgets, scope: str, subject: str, *, by_owner: bool
) -> bool:
    """Remove a key's or owner's limits; whether there were any.

    Raises:
        BudgetLocked: the operator set them and ``by_owner``.
    """
    if scope not in rows.SCOPES:
        raise InvalidRequest(
            f"scope: expected one of {list(rows.SCOPES)}, got {scope!r}",
            [{"path": "scope", "message": f"expected one of {list(rows.SCOPES)}"}],
        )
    if by_owner:
        current = await rows.get_budget(store, scope, subject)
        if current is not None and current.set_by == "operator":
            raise BudgetLocked(
                f"the {scope} budget of {subject or '-'} was set by the operator; only the"
                " operator can remove it"
            )
    removed = await rows.delete_budget(store, scope, subject)
    budgets.forget()
    return removed


async def report(
    store: Writer | None, budgets: Budgets, owner: str | None, key_id: str | None
) -> dict[str, Any]:
    """A payer's plan, the limits set for the key and the owner, and each counter."""
    found = await budgets.limits(owner, key_id)
    set_rows = []
    if store is not None:
        for scope, subject in (("key", key_id), ("owner", owner or "")):
            if subject is not None and (r := await rows.get_budget(store, scope, subject)):
                set_rows.append(r.public())
    plan = found.plan
    return {
        "owner": owner,
        "key": key_id,
        "plan": found.plan_name,
        "plan_limits": plan.model_dump(mode="json") if plan is not None else None,
        "budgets": set_rows,
        "counters": await budgets.status(owner, key_id),
    }
