"""Google Gemini on Vertex AI (langchain-google-genai's Vertex mode): thinking level or budget."""

from __future__ import annotations

import os
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel

from crewchief.effort import GEMINI_THINKING_BUDGET
from crewchief.errors import ModelConfigError
from crewchief.models.providers import BuildRequest, register


@register("google")
def build(req: BuildRequest) -> BaseChatModel:
    """A ``ChatGoogleGenerativeAI`` in Vertex mode for the spec, or on the Gemini API with
    an owner's own Gemini API key when they stored one."""
    cfg, name, effort, alias_cfg, common = req.config, req.name, req.effort, req.alias, req.common
    try:
        from langchain_google_genai import ChatGoogleGenerativeAI
    except ImportError:
        raise ModelConfigError("provider google needs: pip install 'crewchief[google]'") from None
    if req.credential is not None:
        kwargs: dict[str, Any] = dict(common, vertexai=False, api_key=req.credential.api_key)
    else:
        kwargs = dict(common, vertexai=True, **_vertex(cfg, name))
    if alias_cfg.max_tokens:
        kwargs["max_output_tokens"] = alias_cfg.max_tokens
    if cfg.reasoning is not False:
        if "gemini-2" in name:
            kwargs["thinking_budget"] = GEMINI_THINKING_BUDGET[effort]
        else:
            kwargs["thinking_level"] = effort
    return ChatGoogleGenerativeAI(**kwargs)


def _vertex(cfg: Any, name: str) -> dict[str, Any]:
    project = cfg.project or os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not project:
        raise ModelConfigError(f"model google:{name} needs a project ($GOOGLE_CLOUD_PROJECT)")
    location = cfg.location or os.environ.get("GOOGLE_CLOUD_LOCATION", "global")
    return {"project": project, "location": location}
