"""Provider adapters: turn a ``provider:model`` spec into a LangChain chat model.

Each adapter maps the normalized reasoning effort to its provider's knob:
OpenAI ``reasoning_effort`` (reasoning models only), Gemini thinking level or
budget, Ollama ``think``. Heavy provider packages are imported only here, only
when a spec asks for them.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

from crewchief.config import AliasConfig, ProviderConfig, Settings
from crewchief.effort import GEMINI_THINKING_BUDGET, Effort, openai_supports_effort
from crewchief.errors import ModelConfigError, ModelRequestsBlocked

BUILTIN_PROVIDERS: dict[str, ProviderConfig] = {
    "openai": ProviderConfig(type="openai"),
    "ollama": ProviderConfig(type="ollama"),
    "google": ProviderConfig(type="google"),
    "vertex": ProviderConfig(type="google"),
    "local": ProviderConfig(type="local"),
    "fake": ProviderConfig(type="fake"),
}


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
    spec: str, effort: Effort, settings: Settings, alias_cfg: AliasConfig | None = None
) -> BaseChatModel:
    """Build the chat model for ``spec`` at the given reasoning effort.

    Raises:
        ModelConfigError: unknown provider, missing package or credentials.
        ModelRequestsBlocked: a real provider while requests are disabled.
    """
    provider, name = parse_spec(spec)
    cfg = provider_config(settings, provider)
    alias_cfg = alias_cfg or AliasConfig()
    if cfg.type == "fake":
        from crewchief.models.fake import FakeChatModel, script_for_spec

        return FakeChatModel(script=script_for_spec(name), effort=effort, model_name=name)
    if not requests_allowed(cfg.type):
        raise ModelRequestsBlocked(
            f"model {spec!r} would make a real request, and CREWCHIEF_ALLOW_MODEL_REQUESTS="
            f"{os.environ.get('CREWCHIEF_ALLOW_MODEL_REQUESTS')}"
        )
    # Every call is bounded: a small model can otherwise generate until the timeout.
    alias_cfg = alias_cfg.model_copy(
        update={"max_tokens": alias_cfg.max_tokens or settings.max_output_tokens}
    )
    if cfg.type == "local":
        return _local(settings, name, alias_cfg)
    builder = _BUILDERS.get(cfg.type)
    if builder is None:
        raise ModelConfigError(f"provider {provider!r} has unknown type {cfg.type!r}")
    common: dict[str, Any] = {"model": name, "timeout": settings.model_timeout}
    if alias_cfg.temperature is not None:
        common["temperature"] = alias_cfg.temperature
    return builder(cfg, name, effort, alias_cfg, common)


def _local(settings: Settings, name: str, alias_cfg: AliasConfig) -> BaseChatModel:
    from crewchief.local.catalog import CATALOG
    from crewchief.local.chat import LocalChatModel

    if name not in CATALOG:
        raise ModelConfigError(
            f"unknown local model {name!r}; available: {', '.join(CATALOG)} "
            "(for other GGUF files run llama-server yourself and use an openai-type provider)"
        )
    return LocalChatModel(
        model_name=name,
        home=settings.home,
        local=settings.local,
        max_tokens=alias_cfg.max_tokens,
        # Small models wander at llama.cpp's default 0.8; 0.2 keeps plans and edits on task.
        temperature=alias_cfg.temperature if alias_cfg.temperature is not None else 0.2,
        timeout=settings.model_timeout,
    )


def _api_key(cfg: ProviderConfig, default_env: str) -> str | None:
    var = cfg.api_key_env or default_env
    return os.environ.get(var)


def _openai(
    cfg: ProviderConfig, name: str, effort: Effort, alias_cfg: AliasConfig, common: dict
) -> BaseChatModel:
    from langchain_openai import ChatOpenAI

    base_url = cfg.base_url or os.environ.get("OPENAI_BASE_URL")
    key = _api_key(cfg, "OPENAI_API_KEY")
    if key is None and base_url is None:
        var = cfg.api_key_env or "OPENAI_API_KEY"
        raise ModelConfigError(f"model openai:{name} needs an API key in ${var} (or a base_url)")
    kwargs: dict[str, Any] = dict(common, base_url=base_url, api_key=key or "unused", max_retries=2)
    kwargs["stream_usage"] = True
    if alias_cfg.max_tokens:
        kwargs["max_tokens"] = alias_cfg.max_tokens
    reasoning = cfg.reasoning if cfg.reasoning is not None else openai_supports_effort(name)
    if reasoning:
        kwargs["reasoning_effort"] = effort
    return ChatOpenAI(**kwargs)


def _ollama(
    cfg: ProviderConfig, name: str, effort: Effort, alias_cfg: AliasConfig, common: dict
) -> BaseChatModel:
    try:
        from langchain_ollama import ChatOllama
    except ImportError:
        raise ModelConfigError("provider ollama needs: pip install 'crewchief[ollama]'") from None
    kwargs: dict[str, Any] = {
        "model": name,
        "base_url": cfg.base_url,
        "client_kwargs": {"timeout": common["timeout"]},
    }
    if "temperature" in common:
        kwargs["temperature"] = common["temperature"]
    if alias_cfg.max_tokens:
        kwargs["num_predict"] = alias_cfg.max_tokens
    if cfg.reasoning is not False:
        # gpt-oss takes a level; other thinking models only on/off.
        if "gpt-oss" in name:
            kwargs["reasoning"] = effort
        elif effort == "low":
            kwargs["reasoning"] = False
        elif effort == "high" and cfg.reasoning:
            kwargs["reasoning"] = True
    return ChatOllama(**kwargs)


def _google(
    cfg: ProviderConfig, name: str, effort: Effort, alias_cfg: AliasConfig, common: dict
) -> BaseChatModel:
    try:
        from langchain_google_genai import ChatGoogleGenerativeAI
    except ImportError:
        raise ModelConfigError("provider google needs: pip install 'crewchief[google]'") from None
    project = cfg.project or os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not project:
        raise ModelConfigError(f"model google:{name} needs a project ($GOOGLE_CLOUD_PROJECT)")
    kwargs: dict[str, Any] = dict(
        common,
        vertexai=True,
        project=project,
        location=cfg.location or os.environ.get("GOOGLE_CLOUD_LOCATION", "global"),
    )
    if alias_cfg.max_tokens:
        kwargs["max_output_tokens"] = alias_cfg.max_tokens
    if cfg.reasoning is not False:
        if "gemini-2" in name:
            kwargs["thinking_budget"] = GEMINI_THINKING_BUDGET[effort]
        else:
            kwargs["thinking_level"] = effort
    return ChatGoogleGenerativeAI(**kwargs)


_BUILDERS = {"openai": _openai, "ollama": _ollama, "google": _google}
