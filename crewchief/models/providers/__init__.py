"""Provider adapters: turn a ``provider:model`` spec into a LangChain chat model.

Each provider type is one module of this package that registers its builder
with :func:`register`: ``openai`` (and any OpenAI-compatible server), ``ollama``,
``google`` (Vertex AI), ``local`` (llama.cpp on this machine) and ``fake`` (the
scripted test model). Each adapter maps the normalized reasoning effort to its
provider's knob: OpenAI ``reasoning_effort`` (reasoning models only), Gemini
thinking level or budget, Ollama ``think``. Heavy provider packages are imported
only inside builders, only when a spec asks for them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

from crewchief.config import AliasConfig, ProviderConfig, Settings
from crewchief.effort import Effort
from crewchief.errors import ModelConfigError, ModelRequestsBlocked
from crewchief.models.credentials import Credential

BUILTIN_PROVIDERS: dict[str, ProviderConfig] = {
    "openai": ProviderConfig(type="openai"),
    "ollama": ProviderConfig(type="ollama"),
    "google": ProviderConfig(type="google"),
    "vertex": ProviderConfig(type="google"),
    "local": ProviderConfig(type="local"),
    "fake": ProviderConfig(type="fake"),
}


@dataclass(frozen=True, slots=True)
class BuildRequest:
    """Everything a builder needs to make one chat model."""

    provider: str  # the spec's provider name (``vertex``, ``openai``, a [providers.NAME])
    name: str  # the model name after the colon
    effort: Effort
    config: ProviderConfig
    alias: AliasConfig  # ``max_tokens`` is always set for real providers
    settings: Settings
    common: dict[str, Any]  # ``model``, ``timeout`` and ``temperature`` when set
    # The owner's own key (and base URL) instead of the platform's, when they stored one.
    credential: Credential | None = None


Builder = Callable[[BuildRequest], BaseChatModel]


@dataclass(frozen=True, slots=True)
class _Registration:
    builder: Builder
    real: bool  # makes requests (to a server, or to a local process)


_REGISTRY: dict[str, _Registration] = {}


def register(provider_type: str, *, real: bool = True) -> Callable[[Builder], Builder]:
    """Register the builder of a provider type (a decorator).

    ``real=False`` marks a provider that never makes a request (``fake``): it is
    built even when ``CREWCHIEF_ALLOW_MODEL_REQUESTS=0``.
    """

    def decorate(builder: Builder) -> Builder:
        _REGISTRY[provider_type] = _Registration(builder, real)
        return builder

    return decorate


def parse_spec(spec: str) -> tuple[str, str]:
    """Split ``provider:model`` (``fake`` alone means ``fake:default``)."""
    if spec == "fake":
        return "fake", "default"
    provider, sep, name = spec.partition(":")
    if not sep or not provider or not name:
        raise ModelConfigError(f"model spec {spec!r} must look like 'provider:model'")
    return provider, name


def provider_config(settings: Settings, provider: str) -> ProviderConfig:
    cfg = settings.providers.get(provider) or BUILTIN_PROVIDERS.get(provider)
    if cfg is None:
        known = sorted(set(BUILTIN_PROVIDERS) | set(settings.providers))
        raise ModelConfigError(
            f"unknown provider {provider!r}; expected one of {known} "
            "or a [providers.NAME] table in crewchief.toml"
        )
    return cfg


def requests_allowed(provider_type: str, env: Mapping[str, str] | None = None) -> bool:
    """Whether models of this provider type may be built (``fake`` always may).

    ``CREWCHIEF_ALLOW_MODEL_REQUESTS``: ``1`` (default) allows all, ``0`` none,
    ``local`` only the ``local`` provider (what the real-model tests use).
    """
    env = os.environ if env is None else env
    value = env.get("CREWCHIEF_ALLOW_MODEL_REQUESTS", "1").lower()
    if value in ("0", "false", "no"):
        return False
    return provider_type == "local" if value == "local" else True


def build_chat_model(
    spec: str,
    effort: Effort,
    settings: Settings,
    alias_cfg: AliasConfig | None = None,
    credential: Credential | None = None,
) -> BaseChatModel:
    """Build the chat model for ``spec`` at the given reasoning effort; with ``credential``
    (an owner's own key for the spec's provider) it calls with that key instead.

    Raises:
        ModelConfigError: unknown provider, missing package or credentials.
        ModelRequestsBlocked: a real provider while requests are disabled.
    """
    provider, name = parse_spec(spec)
    cfg = provider_config(settings, provider)
    entry = _REGISTRY.get(cfg.type)
    if entry is None:
        raise ModelConfigError(f"provider {provider!r} has unknown type {cfg.type!r}")
    alias_cfg = alias_cfg or AliasConfig()
    if entry.real:
        if not requests_allowed(cfg.type):
            raise ModelRequestsBlocked(
                f"model {spec!r} would make a real request, and CREWCHIEF_ALLOW_MODEL_REQUESTS="
                f"{os.environ.get('CREWCHIEF_ALLOW_MODEL_REQUESTS')}"
            )
        # Every call is bounded: a small model can otherwise generate until the timeout.
        alias_cfg = alias_cfg.model_copy(
            update={"max_tokens": alias_cfg.max_tokens or settings.max_output_tokens}
        )
    common: dict[str, Any] = {"model": name, "timeout": settings.model_timeout}
    if alias_cfg.temperature is not None:
        common["temperature"] = alias_cfg.temperature
    request = BuildRequest(provider, name, effort, cfg, alias_cfg, settings, common, credential)
    return entry.builder(request)


def api_key(cfg: ProviderConfig, default_env: str) -> str | None:
    """The provider's API key from the environment variable its config names."""
    var = cfg.api_key_env or default_env
    return os.environ.get(var)


# The built-in providers register themselves on import.
from crewchief.models.providers import fake, google, local, ollama, openai  # noqa: E402, F401
