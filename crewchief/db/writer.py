"""The recorder's write path: one thread, one DB-API connection, plain SQL.

Every recorder write is a small transaction on the hot path of an operation
(a fast-path operation makes four, a planned one dozens). Running them as
plain SQL on a dedicated connection in one worker thread costs a fraction of
going through the async ORM, and serializing them there gives each operation
gap-free event numbers without a lock on the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url

from crewchief.config import plain_postgres_url
from crewchief.db._thread import SerialThread, resolve_future
from crewchief.events import Event, EventType

_NAMED = re.compile(r"(?<!:):(\w+)")
# SQLite: commits between two checkpoints of the write-ahead log, which run on a thread of
# their own (see Writer._checkpoint); and the log's length (in pages) past which the writer
# checkpoints it itself.
CHECKPOINT_EVERY = 256
LOG_LIMIT_PAGES = 4000
log = logging.getLogger(__name__)


class Tx:
    """One transaction's view of the database, with dialect differences hidden.

    SQL is written once with ``:name`` parameters; values go through
    :meth:`ts`, :meth:`json` and :meth:`flag` so each backend stores what the
    SQLAlchemy models read back.
    """

    def __init__(self, cursor: Any, sqlite: bool, writer: Writer):
        self.cur = cursor
        self.sqlite = sqlite
        self._writer = writer

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        if not self.sqlite:
            sql = _NAMED.sub(r"%(\1)s", sql)
        self.cur.execute(sql, params or {})
        return self.cur

    def one(self, sql: str, params: dict[str, Any] | None = None) -> tuple | None:
        return self.execute(sql, params).fetchone()

    def ts(self, value: datetime | None) -> Any:
        if value is None or not self.sqlite:
            return value
        return value.strftime("%Y-%m-%d %H:%M:%S.%f")

    def parse_ts(self, value: Any) -> datetime | None:
        """A stored timestamp as an aware UTC datetime."""
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    def parse_json(self, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str | bytes) else value

    def json(self, value: Any) -> Any:
        if self.sqlite:
            return json.dumps(value)
        from psycopg.types.json import Json

        return Json(value)

    def flag(self, value: bool) -> Any:
        return int(value) if self.sqlite else value

    def append(
        self, op: str, type_: EventType, payload: dict[str, Any], key: str, now: datetime
    ) -> Event | None:
        """Append an event unless one with ``key`` exists; numbers are gap-free per operation."""
        seq = self._writer.next_seq(self, op)
        cur = self.execute(
            "INSERT INTO operation_events (operation_id, seq, key, type, payload, created_at) "
            "VALUES (:op, :seq, :key, :type, :payload, :at) ON CONFLICT (operation_id, key) DO NOTHING",
            {
                "op": op,
                "seq": seq,
                "key": key,
                "type": str(type_),
                "payload": self.json(payload),
                "at": self.ts(now),
            },
        )
        if cur.rowcount == 0:
            return None
        self._writer.seqs[op] = seq
        return Event(op, type_, payload, seq, now)


Work = Callable[[Tx], Any]


class Writer:
    """Runs write transactions one at a time in a dedicated thread."""

    def __init__(self, url: str):
        backend = make_url(url).get_backend_name()
        self.sqlite = backend == "sqlite"
        self._target = make_url(url).database if self.sqlite else plain_postgres_url(url)
        self._thread = SerialThread("crewchief-db-writer")
        self._checkpointer = SerialThread("crewchief-db-checkpoint")
        self._checkpoint_conn: Any = None
        self._commits = 0
        self._checkpointing = False
        self._log_too_long = False
        self._conn: Any = None
        self.seqs: dict[str, int] = {}
        self._group: list[tuple[Work, asyncio.Future, asyncio.AbstractEventLoop]] = []
        self._group_lock = threading.Lock()

    def _connect(self) -> Any:
        if self.sqlite:
            Path(self._target).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self._target, isolation_level=None, check_same_thread=False, timeout=30
            )
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            # The commit that fills the log would otherwise copy it into the database and
            # sync it, in the middle of a request: _checkpoint does that elsewhere.
            conn.execute("PRAGMA wal_autocheckpoint=0")
            return conn
        import psycopg

        return psycopg.connect(self._target, autocommit=True)

    def next_seq(self, tx: Tx, op: str) -> int:
        if op not in self.seqs:
            row = tx.one(
                "SELECT MAX(seq) FROM operation_events WHERE operation_id = :op", {"op": op}
            )
            self.seqs[op] = (row[0] if row else None) or 0
        return self.seqs[op] + 1

    def _run(self, work: Work) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        for attempt in range(5):
            cur = self._conn.cursor()
            try:
                cur.execute("BEGIN IMMEDIATE" if self.sqlite else "BEGIN")
                result = work(Tx(cur, self.sqlite, self))
                cur.execute("COMMIT")
                self._committed()
                return result
            except Exception as exc:
                cur.execute("ROLLBACK")
                # Another process numbered an event of the same operation: reload and retry.
                self.seqs.clear()
                if attempt == 4 or not _is_unique_violation(exc):
                    raise
            finally:
                cur.close()
        raise AssertionError("unreachable")

    def _committed(self) -> None:
        if not self.sqlite:
            return
        if self._log_too_long:  # writes never paused long enough: see _checkpoint
            self._log_too_long = False
            self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        self._commits += 1
        if self._commits >= CHECKPOINT_EVERY and not self._checkpointing:
            self._commits, self._checkpointing = 0, True
            self._checkpointer.post(self._checkpoint)

    def _checkpoint(self) -> None:
        """Copy the write-ahead log into the database (and sync it) on the checkpoint
        thread, with a connection of its own: writes go on meanwhile (PASSIVE).

        The log starts over from its beginning at the first write after a checkpoint
        that left nothing behind. Writes that never pause leave something behind each
        time, and the log would grow without end: past :data:`LOG_LIMIT_PAGES` the writer
        checkpoints it itself, once, right after a commit.
        """
        try:
            if self._checkpoint_conn is None:
                self._checkpoint_conn = sqlite3.connect(
                    self._target, isolation_level=None, check_same_thread=False, timeout=30
                )
            (_, pages, _), *_ = self._checkpoint_conn.execute(
                "PRAGMA wal_checkpoint(PASSIVE)"
            ).fetchall()
            self._log_too_long = pages > LOG_LIMIT_PAGES
        except sqlite3.Error as exc:  # the next one tries again; the log only grows meanwhile
            log.warning("checkpoint of %s failed: %s", self._target, exc)
        finally:
            self._checkpointing = False

    async def run(self, work: Work) -> Any:
        """Run ``work(tx)`` in one transaction on the writer thread."""
        return await self._thread.call(lambda: self._run(work))

    async def run_grouped(self, work: Work) -> Any:
        """Like :meth:`run`, but committed together with the other grouped works waiting
        at that moment (group commit): under load, many small inserts share one
        transaction. Each caller still returns only once its work is committed.

        For independent inserts (ledger rows): if the shared transaction fails, each
        work is retried in a transaction of its own, so one bad row fails alone.
        """
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        with self._group_lock:
            self._group.append((work, future, loop))
            first = len(self._group) == 1
        if first:  # the group's flush is not queued yet: queue it
            self._thread.post(self._flush_group)
        return await future

    def _flush_group(self) -> None:
        with self._group_lock:
            group, self._group = self._group, []
        if not group:
            return
        outcomes: list[tuple[bool, Any]]
        try:
            results = self._run(lambda tx: [work(tx) for work, _, _ in group])
            outcomes = [(True, result) for result in results]
        except Exception:  # noqa: BLE001 - isolate the failing work
            outcomes = []
            for work, _, _ in group:
                try:
                    outcomes.append((True, self._run(work)))
                except Exception as exc:  # noqa: BLE001 - handed to its caller
                    outcomes.append((False, exc))
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[Any, ...]]] = {}
        for (_, future, loop), outcome in zip(group, outcomes, strict=True):
            by_loop.setdefault(loop, []).append((future, *outcome))
        for loop, resolved in by_loop.items():
            try:
                loop.call_soon_threadsafe(_resolve_all, resolved)
            except RuntimeError:
                pass  # the callers' loop is closed: nobody is waiting

    def _read(self, work: Work) -> Any:
        if self._conn is None:
            self._conn = self._connect()
        cur = self._conn.cursor()
        try:
            # A read transaction: every SELECT of ``work`` sees the same snapshot.
            cur.execute("BEGIN")
            try:
                return work(Tx(cur, self.sqlite, self))
            finally:
                cur.execute("COMMIT")
        finally:
            cur.close()

    async def read(self, work: Work) -> Any:
        """Run the queries of ``work(tx)`` on one snapshot, on the same thread as writes."""
        return await self._thread.call(lambda: self._read(work))

    def forget(self, op: str) -> None:
        self.seqs.pop(op, None)

    async def close(self) -> None:
        def _close() -> None:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

        await self._thread.call(_close)
        await self._thread.stop()
        await self._checkpointer.stop()  # its last checkpoint done, its thread ended
        if self._checkpoint_conn is not None:
            self._checkpoint_conn.close()
            self._checkpoint_conn = None


def _resolve_all(resolved: list[tuple[Any, ...]]) -> None:
    for future, ok, value in resolved:
        resolve_future(future, ok, value)


def _is_unique_violation(exc: Exception) -> bool:
    if isinstance(exc, sqlite3.IntegrityError):
        return "UNIQUE" in str(exc)
    return getattr(exc, "sqlstate", None) == "23505"
