"""Group commit: ledger rows written together under load, each caller answered once its
own row is committed, and a row that cannot be written failing alone."""

from __future__ import annotations

import asyncio

from crewchief.config import Settings
from crewchief.db._sql import insert_call
from crewchief.db.migrate import app_store
from crewchief.models.types import CallInfo, CallRecord, Usage


def _record(n: int) -> CallRecord:
    info = CallInfo(node="gateway", purpose="gateway:general", owner="alice", api_key_id="k1")
    return CallRecord(info, "gateway", f"openai:m{n}", "none", Usage(n, 1), 1.0, None)


async def test_grouped_writes_share_transactions_and_a_bad_one_fails_alone(
    backend_settings: Settings,
) -> None:
    async with app_store(backend_settings.resolved_database_url) as store:
        seen: list[int] = []  # the transaction each work ran in

        def work(n: int):
            def write(tx) -> int:
                seen.append(id(tx))
                insert_call(tx, _record(n))
                if n == 13:
                    raise ValueError("row 13 cannot be written")
                return n

            return write

        outcomes = await asyncio.gather(
            *(store.run_grouped(work(n)) for n in range(200)), return_exceptions=True
        )

        assert [o for o in outcomes if isinstance(o, Exception)] == [outcomes[13]]
        assert str(outcomes[13]) == "row 13 cannot be written"
        assert [o for o in outcomes if not isinstance(o, Exception)] == [
            n for n in range(200) if n != 13
        ]
        rows = await store.read(
            lambda tx: tx.execute(
                "SELECT input_tokens FROM model_calls WHERE owner = 'alice'"
            ).fetchall()
        )
        assert sorted(r[0] for r in rows) == [n for n in range(200) if n != 13]

        seen.clear()
        await asyncio.gather(*(store.run_grouped(work(n)) for n in range(200, 400)))
        assert len(seen) == 200
        assert len(set(seen)) < 50  # 200 callers at once shared a few transactions


async def test_a_lone_grouped_write_is_committed_before_its_caller_returns(
    tmp_path,
) -> None:
    url = f"sqlite:///{tmp_path / 'app.db'}"
    async with app_store(url) as store:
        await store.run_grouped(lambda tx: insert_call(tx, _record(7)))
        async with app_store(url) as other:  # another connection sees it at once
            count = await other.read(
                lambda tx: tx.one("SELECT COUNT(*) FROM model_calls WHERE input_tokens = 7")
            )
        assert count == (1,)


async def test_the_write_ahead_log_stays_bounded_with_checkpoints_off_the_write_path(
    tmp_path,
) -> None:
    path = tmp_path / "app.db"
    async with app_store(f"sqlite:///{path}") as store:
        wal = path.with_name("app.db-wal")
        largest = 0
        for n in range(6000):  # each its own commit, as sequential requests make them
            await store.run(lambda tx, n=n: insert_call(tx, _record(n)))
            if n % 100 == 0:
                largest = max(largest, wal.stat().st_size)
        rows = await store.read(lambda tx: tx.one("SELECT COUNT(*) FROM model_calls"))
    assert rows == (6000,)
    # Unchecked, 6,000 commits leave a log of about 80 MB. Checkpointed on the side, the
    # log starts over whenever writes pause; these never do, so the writer checkpoints it
    # itself once it passes 4,000 pages (16 MB).
    assert largest < 24 * 2**20, largest
