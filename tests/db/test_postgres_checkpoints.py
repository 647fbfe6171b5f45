"""The PostgreSQL checkpoint saver as scaled mode uses it: whole checkpoints, and a new
operation's first read answered without the database."""

from __future__ import annotations

import asyncio
import contextvars
from pathlib import Path
from typing import Any, TypedDict

import pytest
from langgraph.graph import END, START, StateGraph

from crewchief.db.checkpoint import checkpointer, fresh_thread
from tests.conftest import make_settings

pytestmark = pytest.mark.postgres


class _State(TypedDict):
    n: int


def _graph() -> StateGraph:
    graph = StateGraph(_State)
    graph.add_node("step", lambda state: {"n": state["n"] + 1})
    graph.add_edge(START, "step")
    graph.add_edge("step", END)
    return graph


def _config(thread: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread}}


def _rows(url: str, table: str, thread: str) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(
            f"SELECT count(*) FROM {table} WHERE thread_id = %s",  # noqa: S608 - fixed names
            (thread,),
        ).fetchone()[0]


async def test_a_checkpoint_is_saved_whole_or_not_at_all(postgres_url: str, tmp_path: Path) -> None:
    import psycopg

    settings = make_settings(tmp_path / "home", database_url=postgres_url)
    async with checkpointer(settings) as saver:
        # The checkpoint row of one thread cannot be written; its channel blobs can.
        with psycopg.connect(postgres_url, autocommit=True) as conn:
            conn.execute(
                "ALTER TABLE checkpoints ADD CONSTRAINT refuse_poison CHECK (thread_id <> 'poison')"
            )
        graph = _graph().compile(checkpointer=saver)
        assert (await graph.ainvoke({"n": 1}, _config("fine")))["n"] == 2
        with pytest.raises(psycopg.errors.CheckViolation):
            await graph.ainvoke({"n": 1}, _config("poison"))
    assert _rows(postgres_url, "checkpoints", "fine") > 0
    assert _rows(postgres_url, "checkpoint_blobs", "fine") > 0
    # The blobs and the row go in one pipeline sync, one implicit transaction: the blobs
    # written before the refused row are gone with it (a takeover never finds half of one).
    assert _rows(postgres_url, "checkpoints", "poison") == 0
    assert _rows(postgres_url, "checkpoint_blobs", "poison") == 0


async def test_a_fresh_thread_is_read_from_the_database_after_its_first_read(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "home", database_url=postgres_url)
    async with checkpointer(settings) as saver:
        graph = _graph().compile(checkpointer=saver)
        await graph.ainvoke({"n": 1}, _config("t"))  # the thread has a checkpoint now

        async def in_a_run() -> tuple[Any, Any]:
            fresh_thread("t")  # wrongly: shows the first read goes unasked, not the second
            first = await saver.aget_tuple(_config("t"))
            second = await saver.aget_tuple(_config("t"))
            return first, second

        first, second = await asyncio.create_task(in_a_run(), context=contextvars.copy_context())
        assert first is None
        assert second is not None and second.checkpoint["channel_values"]["n"] == 2
        # Outside that run the thread was never fresh.
        assert await saver.aget_tuple(_config("t")) is not None


async def test_a_new_thread_marked_fresh_runs_and_is_stored(
    postgres_url: str, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / "home", database_url=postgres_url)
    async with checkpointer(settings) as saver:
        graph = _graph().compile(checkpointer=saver)

        async def run() -> Any:
            fresh_thread("new")
            return await graph.ainvoke({"n": 5}, _config("new"))

        assert (await asyncio.create_task(run(), context=contextvars.copy_context()))["n"] == 6
        state = await graph.aget_state(_config("new"))
        assert state.values == {"n": 6}
