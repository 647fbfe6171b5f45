"""Run leases: at most one process runs an operation, and a dead one's runs are found.

A process that runs an operation holds its lease (``operations.lease_holder`` and
``lease_expires_at``) and renews it while the run goes on. Taking a lease succeeds
when nobody holds it, the caller already does, or the holder let it expire; so two
processes never run one operation at once, and an operation still ``running`` whose
lease expired lost its process: another process takes it over from its checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from crewchief.db.models import utcnow
from crewchief.db.writer import Tx, Writer


@dataclass(frozen=True, slots=True)
class LeaseHeld:
    """Who holds a lease another process asked for, and until when."""

    holder: str
    expires_at: datetime


async def acquire(store: Writer, op: str, holder: str, seconds: float) -> LeaseHeld | None:
    """Take (or renew) the lease of ``op`` for ``holder``; the current holder if it is taken."""

    def work(tx: Tx) -> LeaseHeld | None:
        now = utcnow()
        cur = tx.execute(
            "UPDATE operations SET lease_holder = :h, lease_expires_at = :exp WHERE id = :op"
            " AND (lease_holder IS NULL OR lease_holder = :h OR lease_expires_at < :now)",
            {
                "op": op,
                "h": holder,
                "exp": tx.ts(now + timedelta(seconds=seconds)),
                "now": tx.ts(now),
            },
        )
        if cur.rowcount:
            return None
        row = tx.one(
            "SELECT lease_holder, lease_expires_at FROM operations WHERE id = :op", {"op": op}
        )
        if row is None or row[0] is None:
            return None  # gone, or released meanwhile: nothing to wait for
        return LeaseHeld(row[0], tx.parse_ts(row[1]))

    return await store.run(work)


async def take_over(store: Writer, op: str, old: str, holder: str, seconds: float) -> bool:
    """Take the lease from ``old`` (known dead) for ``holder``; False if it changed meanwhile."""

    def work(tx: Tx) -> bool:
        exp = tx.ts(utcnow() + timedelta(seconds=seconds))
        cur = tx.execute(
            "UPDATE operations SET lease_holder = :h, lease_expires_at = :exp"
            " WHERE id = :op AND lease_holder = :old",
            {"op": op, "h": holder, "old": old, "exp": exp},
        )
        return bool(cur.rowcount)

    return await store.run(work)


async def renew(store: Writer, ops: list[str], holder: str, seconds: float) -> set[str]:
    """Extend the leases ``holder`` has on ``ops``; the ones it still holds.

    An operation is lost when another process took its lease over (this one was too
    slow to renew) or it was cancelled (from another process).
    """
    if not ops:
        return set()

    def work(tx: Tx) -> set[str]:
        exp = tx.ts(utcnow() + timedelta(seconds=seconds))
        held: set[str] = set()
        for i in range(0, len(ops), 500):
            names = {f"op{j}": op for j, op in enumerate(ops[i : i + 500])}
            marks = ", ".join(f":{name}" for name in names)
            params: dict[str, Any] = {"h": holder, "exp": exp, **names}
            tx.execute(
                "UPDATE operations SET lease_expires_at = :exp WHERE lease_holder = :h"
                f" AND status <> 'cancelled' AND id IN ({marks})",
                params,
            )
            rows = tx.execute(
                "SELECT id FROM operations WHERE lease_holder = :h AND status <> 'cancelled'"
                f" AND id IN ({marks})",
                params,
            ).fetchall()
            held.update(row[0] for row in rows)
        return held

    return await store.run(work)


async def release(store: Writer, op: str, holder: str) -> None:
    """Give the lease up (the run stopped); nothing happens if another holder has it."""
    await store.run(
        lambda tx: tx.execute(
            "UPDATE operations SET lease_holder = NULL, lease_expires_at = NULL"
            " WHERE id = :op AND lease_holder = :h",
            {"op": op, "h": holder},
        )
    )


async def orphans(store: Writer, *, host: str, limit: int = 100) -> list[tuple[str, str, bool]]:
    """``(operation, holder, expired)`` of running operations that may have lost their process.

    Those whose lease expired, and those held by a process on ``host`` (this machine),
    which the caller can check for being alive at once rather than waiting for expiry.
    """

    def work(tx: Tx) -> list[tuple[str, str, bool]]:
        rows = tx.execute(
            "SELECT id, lease_holder, lease_expires_at < :now FROM operations"
            " WHERE status = 'running' AND lease_holder IS NOT NULL"
            " AND (lease_expires_at < :now OR lease_holder LIKE :host)"
            " ORDER BY lease_expires_at LIMIT :n",
            {"now": tx.ts(utcnow()), "host": host.replace("%", "") + ":%", "n": limit},
        ).fetchall()
        return [(row[0], row[1], bool(row[2])) for row in rows]

    return await store.read(work)


async def holder_of(store: Writer, op: str) -> LeaseHeld | None:
    """Who holds the operation's lease now (None when nobody, or it expired)."""

    def work(tx: Tx) -> LeaseHeld | None:
        row = tx.one(
            "SELECT lease_holder, lease_expires_at FROM operations WHERE id = :op"
            " AND lease_holder IS NOT NULL AND lease_expires_at >= :now",
            {"op": op, "now": tx.ts(utcnow())},
        )
        return LeaseHeld(row[0], tx.parse_ts(row[1])) if row else None

    return await store.read(work)


async def last_holder(store: Writer, op: str) -> str | None:
    """Who holds or last held the operation's lease, expired or not (None once it was given
    up: a run that ended, or handed it back)."""

    def work(tx: Tx) -> str | None:
        row = tx.one("SELECT lease_holder FROM operations WHERE id = :op", {"op": op})
        return row[0] if row else None

    return await store.read(work)
