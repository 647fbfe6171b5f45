"""Streams whose client leaves mid-answer, through a real ``crewchief serve``: each is
charged for what it streamed until then, its reservation is given back, and the ledger and
the budget's counter agree."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from bench.fake_openai import FakeOpenAIThread
from tests.api.conftest import LiveServer

pytestmark = pytest.mark.slow

CONFIG = """
[providers.up]
type = "openai"
base_url = "{base_url}"
api_key_env = "UP_KEY"

[prices."up:cheap"]
input = 0.0
output = 1000.0
"""


@pytest.fixture
def upstream() -> Iterator[FakeOpenAIThread]:
    with FakeOpenAIThread() as fake:
        yield fake


def test_clients_that_leave_mid_stream_are_charged_what_they_used(
    tmp_path: Path, upstream: FakeOpenAIThread, live_server_factory: Callable[..., LiveServer]
) -> None:
    config = tmp_path / "crewchief.toml"
    config.write_text(CONFIG.format(base_url=upstream.base_url))
    server = live_server_factory(
        env={
            "CREWCHIEF_CONFIG": str(config),
            "CREWCHIEF_ALLOW_MODEL_REQUESTS": "1",
            "UP_KEY": "sk-platform",
            "CREWCHIEF_GATEWAY_REWRITE": "false",
            "CREWCHIEF_MEMORY": "false",
        }  # fmt: skip
    )
    with httpx.Client(base_url=server.url, headers=server.auth(), timeout=30) as client:
        put = client.put("/v1/budgets/key", json={"daily_usd": 1.0})
        assert put.status_code == 200, put.text
        # Each answer streams its 40 words in thirds, 0.3 s apart: the client leaves after
        # the first content.
        upstream.script(*({"chunk_delay": 0.3} for _ in range(6)))
        words = " ".join(f"w{i}" for i in range(40))
        body = {"model": "up:cheap", "max_tokens": 40, "stream": True,
                "messages": [{"role": "user", "content": words}]}  # fmt: skip
        for _ in range(6):
            with client.stream("POST", "/v1/chat/completions", json=body) as response:
                assert response.status_code == 200
                for line in response.iter_lines():
                    if '"content": "ok' in line or '"content":"ok' in line:
                        break  # the first words came: leave
        held = spent = ledger = None
        for _ in range(100):  # the ledger rows of streams whose client left come a moment later
            budgets = client.get("/v1/budgets").json()
            day = next(c for c in budgets["counters"] if c["period"] == "day")
            held, spent = day["held_usd"], day["spent_usd"]
            ledger = client.get("/v1/usage").json()["totals"]
            if held == 0 and ledger["calls"] == 6:
                break
            time.sleep(0.1)
        assert held == 0, "every reservation was settled"
        assert ledger["calls"] == 6 and ledger["cost_usd"] == pytest.approx(spent)
        # Charged for what was streamed, not for the whole answer the reservation assumed.
        assert 0 < spent < 6 * 40 * 0.001
