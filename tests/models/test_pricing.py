"""The shipped price table and what calls cost."""

from __future__ import annotations

import pytest

from crewchief.errors import ConfigError
from crewchief.models.pricing import price_table
from crewchief.models.types import Usage


def test_prices_per_million_tokens_with_reasoning_billed_as_output() -> None:
    table = price_table()
    gpt5 = table.require("openai:gpt-5")
    # Usage.output already includes reasoning tokens.
    assert gpt5.cost(Usage(input=2_000_000, output=500_000, reasoning=100_000)) == pytest.approx(
        2 * 1.25 + 0.5 * 10.0
    )
    assert table.get("gpt-5-mini") == table.get("openai:gpt-5-mini")
    assert table.require("local:qwen2.5-coder-1.5b").cost(Usage(10**6, 10**6)) == 0.0
    assert table.as_of and table.sources


def test_every_price_is_positive_and_cheap_models_are_cheaper() -> None:
    table = price_table()
    assert all(p.input > 0 and p.output >= p.input for p in table.models.values())
    assert table.require("gpt-5-mini").output < table.require("gpt-5").output


def test_unknown_model_names_the_known_ones() -> None:
    assert price_table().get("openai:gpt-99") is None
    with pytest.raises(ConfigError, match="no price for model 'openai:gpt-99'.*gpt-5-mini"):
        price_table().require("openai:gpt-99")
