"""The job queue of scaled mode: procrastinate on the app's PostgreSQL database.

One job kind, ``crewchief.run_operation``, carries an operation id and what to
run (a new run's input, a reviewer's decision, or "go on from the checkpoint").
Jobs of one operation share the lock ``op:<id>``, so the queue never runs two of
them at once. The API defers jobs; ``crewchief worker`` processes run them.

procrastinate ships its schema without a version table, so the migrations it
ships are applied here by file name (recorded in ``crewchief_queue_migrations``),
under an advisory lock, once each.
"""

from __future__ import annotations

import pathlib
from typing import TYPE_CHECKING, Any

from crewchief.config import Settings, plain_postgres_url
from crewchief.db.migrate import advisory_lock
from crewchief.errors import CrewchiefError

if TYPE_CHECKING:
    import procrastinate

QUEUE = "operations"
TASK = "crewchief.run_operation"
_LOCK_KEY = 0x63726577  # serializes concurrent schema upgrades
_BOOKKEEPING = (
    "CREATE TABLE IF NOT EXISTS crewchief_queue_migrations ("
    " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
)
# procrastinate notifies workers of new jobs on INSERT only; a job handed back (a worker
# stopping, a stalled job retried) should wake an idle worker at once too.
_REQUEUE_TRIGGER = """
DROP TRIGGER IF EXISTS crewchief_notify_job_requeued ON procrastinate_jobs;
CREATE TRIGGER crewchief_notify_job_requeued AFTER UPDATE OF status ON procrastinate_jobs
  FOR EACH ROW WHEN (old.status = 'doing' AND new.status = 'todo')
  EXECUTE PROCEDURE procrastinate_notify_queue_job_inserted_v1();
"""


class HandBack(Exception):  # noqa: N818 - a signal to the queue, not an error
    """The worker stops: the job goes back to the queue for another worker."""


class LeaseBusy(Exception):  # noqa: N818
    """Another process still holds the operation's run lease: try again shortly."""


def require_queue() -> None:
    try:
        import procrastinate  # noqa: F401
    except ImportError:
        raise CrewchiefError(
            "running operations on workers needs: pip install 'crewchief[scaled]'"
        ) from None


def queue_app(settings: Settings) -> procrastinate.App:
    """The procrastinate app on the settings' PostgreSQL database (not opened)."""
    require_queue()
    import procrastinate

    if not settings.is_postgres:
        raise CrewchiefError(
            "executor = 'queue' needs a PostgreSQL database_url (the queue lives in it)"
        )
    # Every query procrastinate makes is one statement (a SQL function): on autocommit
    # connections each is one round trip, not three (BEGIN, statement, COMMIT).
    connector = procrastinate.PsycopgConnector(
        conninfo=plain_postgres_url(settings.resolved_database_url),
        min_size=1,
        max_size=4,
        configure=_autocommit,
    )
    return procrastinate.App(connector=connector)


async def _autocommit(conn: Any) -> None:
    await conn.set_autocommit(True)


def sync_queue_app(settings: Settings) -> procrastinate.App:
    """A procrastinate app that only defers jobs on a connection it is handed (no pool of
    its own): the app's writer enqueues a new operation's job in the transaction that
    records the operation."""
    require_queue()
    import procrastinate

    connector = procrastinate.SyncPsycopgConnector(
        conninfo=plain_postgres_url(settings.resolved_database_url)
    )
    return procrastinate.App(connector=connector)


def defer_on(
    app: procrastinate.App, connection: Any, operation_id: str, run: dict, options: dict
) -> None:
    """Enqueue the operation's job on ``connection`` (inside its open transaction)."""
    app.configure_task(TASK, queue=QUEUE, lock=f"op:{operation_id}", connection=connection).defer(
        operation_id=operation_id, run=run, options=options
    )


def _migration_files() -> list[pathlib.Path]:
    from procrastinate.schema import SchemaManager

    return sorted(pathlib.Path(SchemaManager.get_migrations_path()).glob("*.sql"))


async def upgrade_queue_schema(settings: Settings) -> list[str]:
    """Create or upgrade procrastinate's tables; the names of what was applied (idempotent)."""
    require_queue()
    import psycopg
    from procrastinate.schema import SchemaManager

    applied: list[str] = []
    conninfo = plain_postgres_url(settings.resolved_database_url)
    async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
        await advisory_lock(conn, _LOCK_KEY)
        try:
            await conn.execute(_BOOKKEEPING)
            present = await (
                await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
            ).fetchone()
            rows = await (
                await conn.execute("SELECT name FROM crewchief_queue_migrations")
            ).fetchall()
            done = {row[0] for row in rows}
            files = _migration_files()
            if not present[0]:
                # A fresh schema is every shipped migration applied.
                async with conn.transaction():
                    await conn.execute(SchemaManager.get_schema())
                    await conn.execute(_REQUEUE_TRIGGER)
                    for f in files:
                        await conn.execute(
                            "INSERT INTO crewchief_queue_migrations (name) VALUES (%s)"
                            " ON CONFLICT DO NOTHING",
                            (f.name,),
                        )
                applied.append(f"schema ({len(files)} migrations)")
            else:
                for f in files:
                    if f.name in done:
                        continue
                    async with conn.transaction():
                        await conn.execute(f.read_text())
                        await conn.execute(
                            "INSERT INTO crewchief_queue_migrations (name) VALUES (%s)", (f.name,)
                        )
                    applied.append(f.name)
                if applied:
                    await conn.execute(_REQUEUE_TRIGGER)  # a migration may replace the function
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied


def encode(payload: Any) -> dict[str, Any]:
    """What to run, as job arguments: a new run's input, a decision, or "go on"."""
    from langgraph.types import Command

    if payload is None:
        return {"kind": "continue"}
    if isinstance(payload, Command):
        return {"kind": "decision", "value": payload.resume}
    return {"kind": "input", "value": dict(payload)}


async def active_jobs(app: procrastinate.App, operation_id: str) -> list[tuple[int, str]]:
    """``(job id, status)`` of the operation's jobs that are waiting or running."""
    rows = await app.connector.execute_query_all_async(
        query="SELECT id, status FROM procrastinate_jobs WHERE task_name = %(task)s"
        " AND lock = %(lock)s AND status IN ('todo', 'doing') ORDER BY id",
        task=TASK,
        lock=f"op:{operation_id}",
    )
    return [(row["id"], row["status"]) for row in rows]


WORKER_ALIVE_S = 8.0  # a worker that beat this recently counts as alive (the stalled-job limit)


async def queue_stats(conn: Any) -> tuple[dict[str, int], float, int]:
    """``({status: jobs}, oldest wait in seconds, workers alive)`` of the operations queue,
    read on an open psycopg connection."""
    depth = dict(
        await (
            await conn.execute(
                "SELECT status, count(*) FROM procrastinate_jobs WHERE queue_name = %s"
                " AND status IN ('todo', 'doing') GROUP BY status",
                (QUEUE,),
            )
        ).fetchall()
    )
    oldest = await (
        await conn.execute(
            "SELECT COALESCE(EXTRACT(EPOCH FROM now() - min(e.at)), 0) FROM procrastinate_jobs j"
            " JOIN LATERAL (SELECT max(at) AS at FROM procrastinate_events"
            "  WHERE job_id = j.id) e ON true"
            " WHERE j.queue_name = %s AND j.status = 'todo'",
            (QUEUE,),
        )
    ).fetchone()
    alive = await (
        await conn.execute(
            "SELECT count(*) FROM procrastinate_workers"
            " WHERE last_heartbeat > now() - make_interval(secs => %s)",
            (WORKER_ALIVE_S,),
        )
    ).fetchone()
    return depth, float(oldest[0] or 0), int(alive[0])
