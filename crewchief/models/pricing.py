"""What model calls cost, from the public price table shipped in ``prices.toml``."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources

from crewchief.errors import ConfigError
from crewchief.models.types import Usage


@dataclass(frozen=True, slots=True)
class Price:
    """US dollars per million tokens. Reasoning tokens are billed as output."""

    input: float
    output: float

    def cost(self, usage: Usage) -> float:
        return (usage.input * self.input + usage.output * self.output) / 1_000_000


FREE = Price(0.0, 0.0)


@dataclass(frozen=True, slots=True)
class PriceTable:
    as_of: str
    sources: tuple[str, ...]
    models: dict[str, Price]

    def get(self, model: str) -> Price | None:
        """The price of ``model`` ("gpt-5-mini" or a spec like "openai:gpt-5-mini").

        ``local:`` and ``fake:`` models are free; unknown models give ``None``.
        """
        provider, _, name = model.rpartition(":")
        if provider in ("local", "fake"):
            return FREE
        return self.models.get(name)

    def require(self, model: str) -> Price:
        """Like :meth:`get`, but an unknown model is an error listing the known ones.

        Raises:
            ConfigError: the table has no price for ``model``.
        """
        price = self.get(model)
        if price is None:
            known = ", ".join(sorted(self.models))
            raise ConfigError(f"no price for model {model!r}; the price table has: {known}")
        return price


@cache
def price_table() -> PriceTable:
    """The shipped table (read once)."""
    raw = resources.files("crewchief.models").joinpath("prices.toml").read_text("utf-8")
    data = tomllib.loads(raw)
    models = {
        name: Price(float(entry["input"]), float(entry["output"]))
        for name, entry in data["models"].items()
    }
    return PriceTable(str(data["as_of"]), tuple(data.get("sources", ())), models)
