"""What calls cost: the provider's stated figure, else the shipped dated table with the
settings' prices over it; local, fake and unknown models are unpriced."""

from __future__ import annotations

from pathlib import Path

import pytest

from crewchief.config import PriceConfig, ProviderConfig
from crewchief.errors import ConfigError
from crewchief.models.pricing import Price, price_table, prices_for, reported
from crewchief.models.types import UNPRICED, Cost, Usage
from tests.conftest import make_settings


def test_cached_input_and_reasoning_have_their_own_prices() -> None:
    gpt5 = price_table().require("openai:gpt-5")
    assert (gpt5.input, gpt5.cached_input, gpt5.output) == (1.25, 0.125, 10.0)
    # 2M prompt tokens of which 1M cached; 500k output tokens of which 100k reasoning.
    usage = Usage(input=2_000_000, output=500_000, reasoning=100_000, cached_input=1_000_000)
    assert gpt5.cost(usage) == pytest.approx(1 * 1.25 + 1 * 0.125 + 0.4 * 10 + 0.1 * 10)
    # A price with a reasoning rate of its own bills reasoning tokens at it, once.
    own = Price(input=1.0, output=2.0, cached_input=0.5, reasoning=4.0)
    assert own.cost(usage) == pytest.approx(1 * 1.0 + 1 * 0.5 + 0.4 * 2.0 + 0.1 * 4.0)
    # Without them, cached input costs the input price and reasoning the output price.
    plain = Price(input=1.0, output=2.0)
    assert plain.cost(usage) == pytest.approx(2 * 1.0 + 0.5 * 2.0)
    # Counts a provider gets wrong (more cached than input) never bill a share twice.
    assert own.cost(Usage(input=10, cached_input=50)) == pytest.approx(10 * 0.5 / 1e6)


def test_the_shipped_table_is_dated_and_names_its_sources() -> None:
    table = price_table()
    assert table.as_of == "2025-08" and table.sources
    assert table.get("gpt-5-mini") == table.get("openai:gpt-5-mini")
    chat = {n: p for n, p in table.models.items() if not n.startswith("text-embedding")}
    assert all(p.input > 0 and p.output >= p.input for p in chat.values())
    assert all(p.cached_input is None or p.cached_input < p.input for p in table.models.values())
    assert table.require("gpt-5-mini").output < table.require("gpt-5").output
    assert table.require("text-embedding-3-small").cost(Usage(1_000_000)) == pytest.approx(0.02)


def test_local_fake_and_unknown_models_cost_nothing_and_say_unpriced(tmp_path: Path) -> None:
    table = price_table()
    for spec in ("local:qwen2.5-coder-1.5b", "fake:default", "fake", "openai:gpt-99"):
        assert table.get(spec) is None
        assert table.cost(spec, Usage(10**6, 10**6)) == UNPRICED == Cost(0.0, "unpriced")
    assert not UNPRICED.priced
    # A provider of a local or fake type is unpriced too, whatever model name it serves.
    settings = make_settings(
        tmp_path,
        providers={"mine": ProviderConfig(type="local"), "x": ProviderConfig(type="openai")},
    )
    configured = prices_for(settings)
    assert configured.cost("mine:gpt-5", Usage(10**6)) == UNPRICED
    assert configured.cost("x:gpt-5", Usage(10**6)) == Cost(1.25, "table")
    with pytest.raises(ConfigError, match="no price for model 'openai:gpt-99'.*gpt-5-mini"):
        table.require("openai:gpt-99")


def test_the_settings_prices_replace_and_add_entries(tmp_path: Path) -> None:
    settings = make_settings(
        tmp_path,
        prices={
            "gpt-5": PriceConfig(input=1.0, output=8.0),
            "deepseek-chat": PriceConfig(input=0.27, output=1.10, cached_input=0.07),
            "fake:default": PriceConfig(input=2.0, output=2.0),
        },
    )
    table = prices_for(settings)
    million = Usage(1_000_000, 1_000_000, cached_input=1_000_000)
    assert table.cost("openai:gpt-5", million) == Cost(pytest.approx(1.0 + 8.0), "table")
    assert table.cost("deepseek:deepseek-chat", million).usd == pytest.approx(0.07 + 1.10)
    # Only an entry for the full spec prices a fake (or local) model.
    assert table.cost("fake:default", million).usd == pytest.approx(4.0)
    assert table.cost("fake:other", million) == UNPRICED
    assert price_table().cost("openai:gpt-5", million).usd == pytest.approx(0.125 + 10.0)


def test_a_cost_the_provider_states_wins() -> None:
    table = price_table()
    assert table.cost("openai:gpt-5", Usage(10**6, 10**6), 0.0042) == Cost(0.0042, "provider")
    assert table.cost("local:qwen2.5-coder-1.5b", Usage(5), 0.0) == Cost(0.0, "provider")
    assert [reported(v) for v in (0.5, 2, 0, -1, float("nan"), float("inf"), "1", True, None)] == [
        0.5, 2.0, 0.0, None, None, None, None, None, None,
    ]  # fmt: skip
