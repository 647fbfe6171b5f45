"""The gateway's routing tables in the app database (shared by every API instance)."""

from __future__ import annotations

from typing import Any

from crewchief.db.models import utcnow
from crewchief.db.writer import Tx, Writer


async def save_table(store: Writer, source: str, body: dict[str, Any]) -> int:
    """Store a table; its id (a newer table has a higher one)."""

    def work(tx: Tx) -> int:
        tx.execute(
            "INSERT INTO routing_tables (source, body, created_at) VALUES (:source, :body, :now)",
            {"source": source, "body": tx.json(body), "now": tx.ts(utcnow())},
        )
        row = tx.one("SELECT MAX(id) FROM routing_tables")
        return int(row[0]) if row else 0

    return await store.run(work)


async def newest_id(store: Writer) -> int | None:
    """The id of the newest table (one cheap read), None when there is none."""
    row = await store.read(lambda tx: tx.one("SELECT MAX(id) FROM routing_tables"))
    return int(row[0]) if row and row[0] is not None else None


async def newest_tables(store: Writer, count: int = 1) -> list[dict[str, Any]]:
    """The bodies of the newest ``count`` tables, newest first."""

    def work(tx: Tx) -> list[dict[str, Any]]:
        rows = tx.execute(
            "SELECT body FROM routing_tables ORDER BY id DESC LIMIT :n", {"n": count}
        ).fetchall()
        return [tx.parse_json(r[0]) for r in rows]

    return await store.read(work)


class RouteTables:
    """The routing tables of one app database."""

    def __init__(self, store: Writer):
        self._store = store

    async def save(self, source: str, body: dict[str, Any]) -> int:
        return await save_table(self._store, source, body)

    async def newest_id(self) -> int | None:
        return await newest_id(self._store)

    async def newest(self, count: int = 1) -> list[dict[str, Any]]:
        return await newest_tables(self._store, count)
