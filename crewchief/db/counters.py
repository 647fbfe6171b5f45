"""Budget counters: what each subject spent in a period and what calls under way hold.

Two backends keep one contract. :class:`LocalCounters` counts in this process (embedded
mode: one process spends). :class:`SqlCounters` counts in the app database, every process
of a scaled deployment sharing it: a reservation is one transaction that locks the
counters it touches (in a fixed order, so two never wait on each other), checks each
capped one, and adds its holds only if all of them fit.

A hold that is never settled (its process died mid-call) stops counting when it expires.
A counter starts from what the ledger already holds for its subject and period.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from crewchief.db.budgets import spent_since
from crewchief.db.writer import Tx, Writer


@dataclass(frozen=True, slots=True)
class Want:
    """A reservation's share of one counter: ``amount`` against ``cap`` (None: counted,
    never refused). ``seed`` says where the counter's starting value is read from."""

    counter: str
    amount: int
    cap: int | None
    unit: str  # usd | requests | operations
    scope: str  # key | owner
    subject: str
    since: datetime
    period_end: datetime


@dataclass(frozen=True, slots=True)
class Count:
    spent: int
    held: int


class Counters(Protocol):
    async def reserve(
        self, hold_id: str, wants: Sequence[Want], expires_at: datetime
    ) -> tuple[int, Count] | None:
        """Hold every want, or none: None when all capped ones fit, else the index of the
        first that does not and what its counter held."""
        ...

    async def settle(
        self, hold_id: str, counters: Sequence[str], amount: int
    ) -> list[tuple[int, int]]:
        """Drop the hold and add ``amount`` to each counter: (spent before, after) each."""
        ...

    async def release(self, hold_id: str, counters: Sequence[str]) -> None: ...

    async def read(self, wants: Sequence[Want]) -> list[Count]: ...


Seed = Callable[[Want], Awaitable[int]]


def _now() -> datetime:
    return datetime.now(UTC)


class LocalCounters:
    """Counters in this process's memory, seeded from the ledger on first use."""

    def __init__(self, seed: Seed):
        self._seed = seed
        self._lock = threading.Lock()  # cheap, and safe for registries shared across loops
        self._spent: dict[str, int] = {}
        self._ends: dict[str, datetime] = {}
        self._held: dict[str, int] = {}
        self._holds: dict[str, dict[str, tuple[int, datetime]]] = {}

    async def _ensure(self, wants: Sequence[Want]) -> None:
        missing = [w for w in wants if w.counter not in self._spent]
        if not missing:
            return
        values = await asyncio.gather(*(self._seed(w) for w in missing))
        now = _now()
        with self._lock:
            for w, value in zip(missing, values, strict=True):
                self._spent.setdefault(w.counter, value)
                self._ends[w.counter] = w.period_end
            for old in [c for c, end in self._ends.items() if end < now and not self._holds.get(c)]:
                for table in (self._spent, self._ends, self._held, self._holds):
                    table.pop(old, None)

    def _expire(self, counter: str, now: datetime) -> None:
        holds = self._holds.get(counter) or {}
        for hold_id in [h for h, (_, until) in holds.items() if until <= now]:
            self._held[counter] -= holds.pop(hold_id)[0]

    async def reserve(
        self, hold_id: str, wants: Sequence[Want], expires_at: datetime
    ) -> tuple[int, Count] | None:
        await self._ensure(wants)
        now = _now()
        with self._lock:
            for i, w in enumerate(wants):
                if w.cap is None:
                    continue
                if self._spent[w.counter] + self._held.get(w.counter, 0) + w.amount > w.cap:
                    self._expire(w.counter, now)
                    held = self._held.get(w.counter, 0)
                    if self._spent[w.counter] + held + w.amount > w.cap:
                        return i, Count(self._spent[w.counter], held)
            for w in wants:
                self._held[w.counter] = self._held.get(w.counter, 0) + w.amount
                self._holds.setdefault(w.counter, {})[hold_id] = (w.amount, expires_at)
        return None

    def _drop(self, hold_id: str, counter: str) -> None:
        entry = self._holds.get(counter, {}).pop(hold_id, None)
        if entry is not None:
            self._held[counter] -= entry[0]

    async def settle(
        self, hold_id: str, counters: Sequence[str], amount: int
    ) -> list[tuple[int, int]]:
        out = []
        with self._lock:
            for counter in counters:
                self._drop(hold_id, counter)
                before = self._spent.get(counter, 0)
                self._spent[counter] = before + amount
                out.append((before, before + amount))
        return out

    async def release(self, hold_id: str, counters: Sequence[str]) -> None:
        with self._lock:
            for counter in counters:
                self._drop(hold_id, counter)

    async def read(self, wants: Sequence[Want]) -> list[Count]:
        await self._ensure(wants)
        with self._lock:
            return [Count(self._spent[w.counter], self._held.get(w.counter, 0)) for w in wants]


def _unsynced(tx: Tx) -> None:
    """Commit this transaction without waiting for the disk (PostgreSQL).

    Its changes are seen by every other transaction at once, as with any commit; only a
    crash of the database server itself in the next few hundred milliseconds could lose
    them. A lost hold only frees room early, and spend is counted again from the ledger
    when a period's counter is created. Waiting for the disk would cost each reservation
    and settlement a flush (about 4 ms here), serialized behind the process's writer.
    """
    if not tx.sqlite:
        tx.execute("SET LOCAL synchronous_commit TO OFF")


class SqlCounters:
    """Counters in the app database, shared by every process (scaled mode)."""

    def __init__(self, store: Writer):
        self._store = store

    @staticmethod
    def _locked(tx: Tx, w: Want, now: datetime) -> Count:
        """The counter's row, created from the ledger if need be, locked until commit."""
        lock = "" if tx.sqlite else " FOR UPDATE"  # SQLite: the one writer serializes
        select = "SELECT spent FROM budget_counters WHERE key = :k" + lock
        row = tx.one(select, {"k": w.counter})
        if row is None:
            seed = spent_since(tx, w.unit, w.scope, w.subject, w.since)
            tx.execute(
                "INSERT INTO budget_counters (key, spent, period_end) VALUES (:k, :v, :end)"
                " ON CONFLICT (key) DO NOTHING",
                {"k": w.counter, "v": seed, "end": tx.ts(w.period_end)},
            )
            row = tx.one(select, {"k": w.counter})
        tx.execute(
            "DELETE FROM budget_holds WHERE counter = :k AND expires_at <= :now",
            {"k": w.counter, "now": tx.ts(now)},
        )
        held = tx.one(
            "SELECT COALESCE(SUM(amount), 0) FROM budget_holds WHERE counter = :k",
            {"k": w.counter},
        )[0]
        return Count(int(row[0]), int(held))

    async def reserve(
        self, hold_id: str, wants: Sequence[Want], expires_at: datetime
    ) -> tuple[int, Count] | None:
        order = sorted(range(len(wants)), key=lambda i: wants[i].counter)

        def work(tx: Tx) -> tuple[int, Count] | None:
            _unsynced(tx)
            now = _now()
            for i in order:
                w = wants[i]
                count = self._locked(tx, w, now)
                if w.cap is not None and count.spent + count.held + w.amount > w.cap:
                    return i, count  # nothing was added: the transaction adds holds last
            for w in wants:
                tx.execute(
                    "INSERT INTO budget_holds (id, counter, amount, expires_at)"
                    " VALUES (:id, :k, :a, :until)",
                    {"id": hold_id, "k": w.counter, "a": w.amount, "until": tx.ts(expires_at)},
                )
            return None

        return await self._store.run(work)

    async def settle(
        self, hold_id: str, counters: Sequence[str], amount: int
    ) -> list[tuple[int, int]]:
        def work(tx: Tx) -> list[tuple[int, int]]:
            _unsynced(tx)
            after = {}
            for counter in sorted(counters):
                row = tx.one(
                    "UPDATE budget_counters SET spent = spent + :a WHERE key = :k RETURNING spent",
                    {"a": amount, "k": counter},
                )
                after[counter] = int(row[0]) if row else amount
            tx.execute("DELETE FROM budget_holds WHERE id = :id", {"id": hold_id})
            return [(after[c] - amount, after[c]) for c in counters]

        return await self._store.run(work)

    async def release(self, hold_id: str, counters: Sequence[str]) -> None:
        def work(tx: Tx) -> None:
            _unsynced(tx)
            tx.execute("DELETE FROM budget_holds WHERE id = :id", {"id": hold_id})

        await self._store.run(work)

    async def read(self, wants: Sequence[Want]) -> list[Count]:
        def work(tx: Tx) -> list[Count]:
            now = _now()
            out = []
            for w in wants:
                row = tx.one("SELECT spent FROM budget_counters WHERE key = :k", {"k": w.counter})
                spent = int(row[0]) if row else spent_since(tx, w.unit, w.scope, w.subject, w.since)
                held = tx.one(
                    "SELECT COALESCE(SUM(amount), 0) FROM budget_holds WHERE counter = :k"
                    " AND expires_at > :now",
                    {"k": w.counter, "now": tx.ts(now)},
                )[0]
                out.append(Count(spent, int(held)))
            return out

        return await self._store.read(work)
