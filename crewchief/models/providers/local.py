"""``local``: a catalog model run by llama.cpp on this machine (pulled and built on first use)."""

from __future__ import annotations

from langchain_core.language_models.chat_models import BaseChatModel

from crewchief.errors import ModelConfigError
from crewchief.models.providers import BuildRequest, register


@register("local")
def build(req: BuildRequest) -> BaseChatModel:
    """A model of the local catalog, served by llama-server on this machine."""
    settings, name, alias_cfg = req.settings, req.name, req.alias
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
