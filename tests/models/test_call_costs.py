"""Every call the alias layer makes is priced: the reply's stated cost, else the table's
prices for its tokens (cached input and reasoning included), else 0 and unpriced."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.messages import HumanMessage

from bench.fake_openai import FakeOpenAIThread
from crewchief.config import AliasConfig, PriceConfig
from crewchief.models import CallInfo, ModelRegistry
from crewchief.models.types import CallRecord, Cost, Usage
from tests.conftest import make_settings, write_script


async def _call(registry: ModelRegistry, text: str = "hi") -> list[CallRecord]:
    """The records of one call of the orchestrator alias."""
    records: list[CallRecord] = []

    async def on_usage(record: CallRecord) -> None:
        records.append(record)

    await registry.call(
        "orchestrator", [HumanMessage(text)], effort="low", info=CallInfo("fast_path", "op"),
        on_usage=on_usage,
    )  # fmt: skip
    return records


async def test_a_call_is_priced_from_its_tokens_or_its_stated_cost(tmp_path: Path) -> None:
    usage = {"input": 1000, "output": 200, "reasoning": 100, "cached_input": 400}
    spec = write_script(
        tmp_path,
        [
            {"match": "stated", "reply": {"text": "ok", "usage": usage, "cost": 0.25}},
            {"reply": {"text": "ok", "usage": usage}},
        ],
    )
    price = PriceConfig(input=1.0, output=2.0, cached_input=0.5, reasoning=4.0)
    settings = make_settings(tmp_path, prices={spec: price})
    registry = ModelRegistry(settings, {"orchestrator": spec})
    (record,) = await _call(registry)
    # The fake counts reasoning inside output, as providers do.
    assert record.usage == Usage(input=1000, output=300, reasoning=100, cached_input=400)
    expected = (600 * 1.0 + 400 * 0.5 + 200 * 2.0 + 100 * 4.0) / 1e6
    assert record.cost == Cost(pytest.approx(expected), "table")

    (stated,) = await _call(registry, "stated")
    assert stated.cost == Cost(0.25, "provider")


async def test_unpriced_models_and_failed_attempts(tmp_path: Path) -> None:
    broken = write_script(tmp_path, [{"reply": {"error": "503 overloaded"}}])
    settings = make_settings(tmp_path, prices={broken: PriceConfig(input=1.0, output=1.0)})
    registry = ModelRegistry(
        settings, {"orchestrator": AliasConfig(model=broken, fallbacks=["fake:default"])}
    )
    failed, answered = await _call(registry)
    # A failed attempt used no tokens: a priced model's costs $0 from the table.
    assert failed.error and failed.cost == Cost(0.0, "table")
    assert answered.usage.input > 0 and answered.cost == Cost(0.0, "unpriced")


async def test_an_openai_compatible_server_stated_cost_and_cached_tokens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The OpenAI adapter streams; the usage chunk's ``cost`` and cached tokens reach the
    record (LangChain alone would drop the cost)."""
    monkeypatch.setenv("CREWCHIEF_ALLOW_MODEL_REQUESTS", "1")
    with FakeOpenAIThread() as upstream:
        monkeypatch.setenv("OPENAI_BASE_URL", upstream.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        registry = ModelRegistry(make_settings(tmp_path), {"orchestrator": "openai:gpt-4o-mini"})
        cached = {"prompt_tokens_details": {"cached_tokens": 2}}
        upstream.script({"usage": cached})
        (priced,) = await _call(registry, "a question of several words for the server")
        assert priced.usage.cached_input == 2 and priced.usage.input > 2
        u = priced.usage
        expected = ((u.input - 2) * 0.15 + 2 * 0.075 + u.output * 0.60) / 1e6
        assert priced.cost == Cost(pytest.approx(expected), "table")
        upstream.script({"usage": {"cost": 0.0123, **cached}})
        (stated,) = await _call(registry)
        assert stated.cost == Cost(0.0123, "provider")
        assert upstream.requests[-1]["body"]["stream"] is True
