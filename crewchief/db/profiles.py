"""Owner profiles in the app database: one row per owner, stated and learned preferences.

The row's ``owner`` is the API key owner, or ``""`` for the owner of calls made without a
key (library use, keyless dev mode): no key owner can be empty. What the preferences mean
and how they are checked is :mod:`crewchief.knowledge.profile`'s business; this module
stores what it is given.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from crewchief.db.models import utcnow
from crewchief.db.writer import Tx, Writer


def owner_key(owner: str | None) -> str:
    """An owner as its row stores it."""
    return owner or ""


@dataclass(frozen=True, slots=True)
class ProfileRow:
    stated: dict[str, Any]
    learned: dict[str, Any]
    learned_at: datetime | None
    updated_at: datetime | None


def _read(tx: Tx, owner: str | None) -> ProfileRow | None:
    row = tx.one(
        "SELECT stated, learned, learned_at, updated_at FROM profiles WHERE owner = :owner",
        {"owner": owner_key(owner)},
    )
    if row is None:
        return None
    return ProfileRow(
        tx.parse_json(row[0]) or {},
        tx.parse_json(row[1]) or {},
        tx.parse_ts(row[2]),
        tx.parse_ts(row[3]),
    )


async def get(store: Writer, owner: str | None) -> ProfileRow | None:
    """The owner's row, None when there is none."""
    return await store.read(lambda tx: _read(tx, owner))


_UPSERT = (
    "INSERT INTO profiles (owner, stated, learned, learned_at, created_at, updated_at)"
    " VALUES (:owner, :stated, :learned, :learned_at, :now, :now)"
)


async def update_stated(
    store: Writer, owner: str | None, change: Callable[[dict[str, Any]], dict[str, Any]]
) -> ProfileRow:
    """Replace the stated preferences with ``change(current)``, read and written in one
    transaction (the row is made if need be); the row after."""

    def work(tx: Tx) -> ProfileRow:
        current = _read(tx, owner)
        stated = change(current.stated if current is not None else {})
        now = tx.ts(utcnow())
        tx.execute(
            _UPSERT + " ON CONFLICT (owner) DO UPDATE SET stated = :stated, updated_at = :now",
            {
                "owner": owner_key(owner),
                "stated": tx.json(stated),
                "learned": tx.json({}),
                "learned_at": None,
                "now": now,
            },
        )
        row = _read(tx, owner)
        assert row is not None
        return row

    return await store.run(work)


async def put_learned(store: Writer, owner: str | None, learned: dict[str, Any]) -> None:
    """Replace the learned preferences. A row is made only when something was learned;
    with nothing learned, a row that states nothing either is deleted."""

    def work(tx: Tx) -> None:
        now = tx.ts(utcnow())
        params = {
            "owner": owner_key(owner),
            "stated": tx.json({}),
            "learned": tx.json(learned),
            "learned_at": now,
            "now": now,
        }
        if any(learned.values()):
            tx.execute(
                _UPSERT + " ON CONFLICT (owner) DO UPDATE SET learned = :learned,"
                " learned_at = :learned_at",
                params,
            )
            return
        current = _read(tx, owner)
        if current is None:
            return
        if not any(current.stated.values()):
            tx.execute("DELETE FROM profiles WHERE owner = :owner", params)
            return
        tx.execute(
            "UPDATE profiles SET learned = :learned, learned_at = :learned_at WHERE owner = :owner",
            params,
        )

    await store.run(work)


async def delete(store: Writer, owner: str | None) -> int:
    """Delete the owner's row; how many there were (0 or 1)."""

    def work(tx: Tx) -> int:
        cur = tx.execute("DELETE FROM profiles WHERE owner = :owner", {"owner": owner_key(owner)})
        return cur.rowcount

    return await store.run(work)
