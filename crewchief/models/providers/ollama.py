"""Ollama: effort maps to ``reasoning`` (a level for gpt-oss, on/off for other thinking models)."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

from crewchief.errors import ModelConfigError
from crewchief.models.providers import BuildRequest, register


@register("ollama")
def build(req: BuildRequest) -> BaseChatModel:
    """A ``ChatOllama`` for the spec."""
    cfg, name, effort, alias_cfg, common = req.config, req.name, req.effort, req.alias, req.common
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
