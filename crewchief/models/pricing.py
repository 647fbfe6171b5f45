"""What model calls cost: the provider's own figure when its response carries one, else the
dated public price table shipped in ``prices.toml`` with the ``[prices]`` of the settings
over it. Local, fake and unknown models are unpriced: they cost 0 and say so."""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field, replace
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from crewchief.errors import ConfigError
from crewchief.models.types import UNPRICED, Cost, Usage

if TYPE_CHECKING:
    from crewchief.config import Settings

# Provider types whose models the shipped table never prices.
UNPRICED_TYPES = ("local", "fake")


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens. Cached prompt tokens cost ``cached_input`` (default:
    ``input``), reasoning tokens ``reasoning`` (default: ``output``)."""

    input: float
    output: float
    cached_input: float | None = None
    reasoning: float | None = None

    def cost(self, usage: Usage) -> float:
        """What ``usage`` costs. ``usage.input`` includes its cached tokens and
        ``usage.output`` its reasoning tokens, so each share is billed once."""
        cached = min(max(usage.cached_input, 0), usage.input)
        reasoning = min(max(usage.reasoning, 0), usage.output)
        cached_price = self.input if self.cached_input is None else self.cached_input
        reasoning_price = self.output if self.reasoning is None else self.reasoning
        return (
            (usage.input - cached) * self.input
            + cached * cached_price
            + (usage.output - reasoning) * self.output
            + reasoning * reasoning_price
        ) / 1_000_000


def reported(value: Any) -> float | None:
    """A cost a response states (a non-negative, finite number of dollars), else None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) and value >= 0 else None


@dataclass(frozen=True, slots=True)
class PriceTable:
    """The shipped prices (``models``, by model name) and the settings' (``overrides``, by
    model name or full spec), and the provider names whose models are unpriced."""

    as_of: str
    sources: tuple[str, ...]
    models: dict[str, Price]
    overrides: dict[str, Price] = field(default_factory=dict)
    unpriced_providers: frozenset[str] = frozenset(UNPRICED_TYPES)

    def get(self, model: str) -> Price | None:
        """The price of ``model`` ("gpt-5-mini" or a spec like "openai:gpt-5-mini").

        An override for the exact spec comes first; then ``local:`` and ``fake:`` models
        (and providers of those types) are unpriced; then the override for the model
        name, then the shipped table. Unknown models give ``None``.
        """
        if model in self.overrides:
            return self.overrides[model]
        provider, _, name = model.rpartition(":")
        if provider in self.unpriced_providers:
            return None
        return self.overrides.get(name) or self.models.get(name)

    def require(self, model: str) -> Price:
        """Like :meth:`get`, but an unpriced model is an error listing the priced ones.

        Raises:
            ConfigError: the table has no price for ``model``.
        """
        price = self.get(model)
        if price is None:
            known = ", ".join(sorted({*self.models, *self.overrides}))
            raise ConfigError(f"no price for model {model!r}; the price table has: {known}")
        return price

    def cost(self, model: str, usage: Usage, stated: float | None = None) -> Cost:
        """What a call of ``model`` cost: ``stated`` (the provider's figure) when there is
        one, else its tokens at the table's price, else 0 and unpriced."""
        if stated is not None:
            return Cost(stated, "provider")
        price = self.get(model)
        if price is None:
            return UNPRICED
        return Cost(price.cost(usage), "table")

    def estimate(self, model: str, prompt_tokens: int, max_output: int) -> float:
        """The most a call of ``model`` can cost: its prompt uncached, and its whole output
        bound at the dearer of the output and reasoning prices (0 when unpriced)."""
        price = self.get(model)
        if price is None:
            return 0.0
        output = max(price.output, price.reasoning or 0.0)
        return (prompt_tokens * price.input + max_output * output) / 1_000_000

    def with_settings(self, settings: Settings) -> PriceTable:
        """This table with the settings' ``[prices]`` over it; providers configured with a
        local or fake type are unpriced like the built-in ones."""
        overrides = {
            name: Price(p.input, p.output, p.cached_input, p.reasoning)
            for name, p in settings.prices.items()
        }
        unpriced = {name for name, cfg in settings.providers.items() if cfg.type in UNPRICED_TYPES}
        return replace(
            self, overrides=overrides, unpriced_providers=frozenset({*UNPRICED_TYPES, *unpriced})
        )


def _price(entry: dict[str, Any]) -> Price:
    optional = {k: float(entry[k]) for k in ("cached_input", "reasoning") if k in entry}
    return Price(float(entry["input"]), float(entry["output"]), **optional)


@cache
def price_table() -> PriceTable:
    """The shipped table (read once)."""
    raw = resources.files("crewchief.models").joinpath("prices.toml").read_text("utf-8")
    data = tomllib.loads(raw)
    models = {name: _price(entry) for name, entry in data["models"].items()}
    return PriceTable(str(data["as_of"]), tuple(data.get("sources", ())), models)


def prices_for(settings: Settings) -> PriceTable:
    """The shipped table with the settings' prices over it."""
    return price_table().with_settings(settings)
