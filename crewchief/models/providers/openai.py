"""OpenAI and any OpenAI-compatible server (``base_url``): ``reasoning_effort`` on reasoning models."""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

from crewchief.effort import openai_supports_effort
from crewchief.errors import ModelConfigError
from crewchief.models.pricing import reported
from crewchief.models.providers import BuildRequest, api_key, register


@cache
def _chat_openai() -> type[BaseChatModel]:
    """``ChatOpenAI`` that keeps the cost a server states in a streamed reply's usage
    (``usage.cost``, as OpenRouter and LiteLLM send it) as ``response_metadata["cost"]``;
    LangChain's own chunk conversion drops every usage field it does not know."""
    from langchain_openai import ChatOpenAI

    class CostAwareChatOpenAI(ChatOpenAI):
        def _convert_chunk_to_generation_chunk(
            self, chunk: dict, default_chunk_class: type, base_generation_info: dict | None
        ) -> Any:
            out = super()._convert_chunk_to_generation_chunk(
                chunk, default_chunk_class, base_generation_info
            )
            usage = chunk.get("usage")
            if out is not None and isinstance(usage, dict):
                cost = reported(usage.get("cost"))
                if cost is not None:
                    out.message.response_metadata["cost"] = cost
            return out

    return CostAwareChatOpenAI


@register("openai")
def build(req: BuildRequest) -> BaseChatModel:
    """A ``ChatOpenAI`` for the spec: the configured base URL and key (an owner's own, when
    they stored one), effort where supported."""
    cfg, name, effort, alias_cfg, common = req.config, req.name, req.effort, req.alias, req.common
    base_url = cfg.base_url or os.environ.get("OPENAI_BASE_URL")
    key = api_key(cfg, "OPENAI_API_KEY")
    if req.credential is not None:
        key = req.credential.api_key.get_secret_value()
        base_url = req.credential.base_url or base_url
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
        kwargs.pop("temperature", None)  # reasoning models refuse any but their own
    return _chat_openai()(**kwargs)
