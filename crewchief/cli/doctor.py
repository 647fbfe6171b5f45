"""``crewchief doctor``: check what this configuration needs, and say what is wrong."""

from __future__ import annotations

import argparse
import asyncio
import json
from dataclasses import asdict, dataclass
from typing import Any

EXIT_OK, EXIT_FAILED = 0, 1


@dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str | None = None


def add_parser(sub: Any) -> None:
    doctor = sub.add_parser(
        "doctor", help="check database, migrations, checkpoints, Redis, queue, workers and models"
    )
    doctor.add_argument("--json", action="store_true", help="print the checks as JSON")


def run(settings: Any, args: argparse.Namespace) -> int:
    checks = asyncio.run(_checks(settings))
    if args.json:
        print(json.dumps([asdict(c) for c in checks], indent=2))
    else:
        for c in checks:
            print(f"{'ok ' if c.ok else 'BAD'}  {c.name:<12} {c.detail}")
            if c.fix and not c.ok:
                print(f"     {'':<12} fix: {c.fix}")
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAILED


async def _checks(settings: Any) -> list[Check]:
    checks = [await _database(settings), await _checkpoints(settings), _models(settings)]
    checks.append(await _redis(settings))
    if settings.executor == "queue":
        checks += await _queue(settings)
    return checks


def _where(url: str) -> str:
    return url.split("@")[-1]


async def _database(settings: Any) -> Check:
    from crewchief.db.migrate import HEAD_REVISION, _current
    from crewchief.db.writer import Writer

    url = settings.resolved_database_url
    store = Writer(url)
    try:
        revision = await store.read(_current)
    except Exception as exc:  # noqa: BLE001 - reported
        return Check("database", False, f"{_where(url)}: unreachable ({exc})", "check database_url")
    finally:
        await store.close()
    if revision != HEAD_REVISION:
        have = revision or "empty"
        return Check(
            "database",
            False,
            f"{_where(url)}: revision {have}, this version needs {HEAD_REVISION}",
            "crewchief db upgrade",
        )
    return Check("database", True, f"{_where(url)}: revision {revision} (current)")


async def _checkpoints(settings: Any) -> Check:
    from crewchief.db.checkpoint import checkpointer

    where = _where(settings.resolved_checkpoint_url)
    try:
        async with checkpointer(settings) as saver:
            await saver.aget_tuple({"configurable": {"thread_id": "crewchief-doctor"}})
    except Exception as exc:  # noqa: BLE001 - reported
        return Check("checkpoints", False, f"{where}: {exc}", "check checkpoint_url / database_url")
    return Check("checkpoints", True, f"{where}: ready")


def _models(settings: Any) -> Check:
    from crewchief.errors import CrewchiefError
    from crewchief.models.registry import ModelRegistry

    try:
        ModelRegistry(settings).check()
    except CrewchiefError as exc:
        return Check("models", False, str(exc), "fix the [models] and [providers] settings")
    bound = ", ".join(f"{alias} {cfg.model}" for alias, cfg in settings.models.items())
    return Check("models", True, bound)


async def _redis(settings: Any) -> Check:
    if not settings.redis_url:
        return Check(
            "redis", True, "not configured: other processes' events are polled from the database"
        )
    try:
        import redis.asyncio as redis

        client = redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
        try:
            await client.ping()
        finally:
            await client.aclose()
    except Exception as exc:  # noqa: BLE001 - reported
        return Check(
            "redis",
            False,
            f"{_where(settings.redis_url)}: unreachable ({exc}); streams fall back to polling",
            "check redis_url, or start Redis",
        )
    return Check("redis", True, f"{_where(settings.redis_url)}: answering")


async def _queue(settings: Any) -> list[Check]:
    try:
        import psycopg

        from crewchief.config import plain_postgres_url
        from crewchief.executor import jobs

        jobs.require_queue()
        files = {f.name for f in jobs._migration_files()}
        conninfo = plain_postgres_url(settings.resolved_database_url)
        async with await psycopg.AsyncConnection.connect(conninfo, autocommit=True) as conn:
            present = await (
                await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL")
            ).fetchone()
            if not present[0]:
                return [Check("queue", False, "no job queue tables", "crewchief db upgrade")]
            done = {
                row[0]
                for row in await (
                    await conn.execute("SELECT name FROM crewchief_queue_migrations")
                ).fetchall()
            }
            depth, _, alive = await jobs.queue_stats(conn)
    except Exception as exc:  # noqa: BLE001 - reported
        return [Check("queue", False, f"cannot inspect the job queue: {exc}", None)]
    missing = sorted(files - done)
    queue = Check(
        "queue",
        not missing,
        f"{depth.get('todo', 0)} waiting, {depth.get('doing', 0)} running"
        + (f"; {len(missing)} queue migrations not applied" if missing else ""),
        "crewchief db upgrade" if missing else None,
    )
    workers = Check(
        "workers",
        alive > 0,
        f"{alive} alive (heartbeat in the last {jobs.WORKER_ALIVE_S:g} s)",
        None if alive else "start crewchief worker (operations wait in the queue meanwhile)",
    )
    return [queue, workers]
