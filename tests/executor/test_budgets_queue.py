"""Scaled mode: an operation run by a ``crewchief worker`` process is held to the budget of
the key owner who started it, though the API process only checked it at the start."""

from __future__ import annotations

from pathlib import Path

import pytest

from crewchief.client.facade import Crewchief
from tests.conftest import make_settings
from tests.executor.test_executors import Workers, _script, scaled_settings

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


async def test_a_workers_calls_count_against_the_payers_budget(
    tmp_path: Path, postgres_url: str, redis_url: str, redis_prefix: str
) -> None:
    spec = _script(tmp_path)
    scaled = scaled_settings(tmp_path / "home", postgres_url, redis_url, redis_prefix)
    # Calls bounded to 100 output tokens at $1000 per million: each reserves $0.10.
    priced = {"max_output_tokens": 100, "prices": {spec: {"input": 0.0, "output": 1000.0}}}
    settings = make_settings(
        scaled.home, **scaled.model_dump(include={"database_url", "redis_url", "redis_prefix",
                                                  "executor", "lease_seconds"}), **priced
    )  # fmt: skip
    workers = Workers(settings, spec, tmp_path)
    (tmp_path / "none.toml").write_text(
        f'max_output_tokens = 100\n[prices."{spec}"]\ninput = 0.0\noutput = 1000.0\n'
    )
    workers.start()
    try:
        async with Crewchief(settings, models={"orchestrator": spec, "delegate": spec}) as cc:
            await cc.set_budget("owner", "alice", daily_usd=0.05)
            # Nothing is spent: the start is allowed; the worker's first call is not.
            handle = await cc.start("Join the parts", route="plan", owner="alice")
            result = await handle.wait()
            assert result.status == "failed" and "budget exceeded" in (result.error or "")
            assert "owner alice" in result.error
            # The same request for an owner without a budget runs to the end on the worker.
            done = await (await cc.start("Join the parts", route="plan", owner="bob")).wait()
            assert done.status == "completed", done.error
            report = await cc.budgets(owner="bob")
            assert report["counters"] == []
            usage = await cc.usage(owner="bob")
            assert usage.totals.cost_usd > 0  # priced on the worker, by the worker's settings
    finally:
        workers.stop_all()
