"""Which models a gateway request goes to, in the order they are tried.

The ``model`` field names a role (``architect``, ``crewchief/review``), ``auto``, an
alias (``orchestrator``, ``delegate``, ``fast``) or a concrete model spec
(``openai:gpt-4o-mini``). A role runs on its alias's model and fallbacks; a concrete
model is tried first, then the role's chain.

The gateway forwards requests as they are to OpenAI-compatible servers (``openai``
providers, with any ``base_url``): tools, response formats and every other field
arrive exactly as the client sent them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from crewchief.config import ALIASES, Settings
from crewchief.errors import ModelConfigError
from crewchief.gateway.errors import GatewayError
from crewchief.gateway.roles import DEFAULT_ALIAS, role_in_model
from crewchief.models.providers import api_key, parse_spec, provider_config, requests_allowed

OPENAI_URL = "https://api.openai.com/v1"


@dataclass(frozen=True, slots=True)
class Target:
    """One model to try: its spec, the name sent upstream, and where it is served."""

    spec: str
    model: str
    base_url: str
    api_key: str | None


@dataclass(frozen=True, slots=True)
class Route:
    """The models to try, primary first, and why they were chosen."""

    targets: list[Target]
    reason: str


def target(settings: Settings, spec: str) -> Target:
    """The upstream serving ``spec``.

    Raises:
        GatewayError: the spec is malformed, names an unknown provider, or one the
            gateway cannot forward to; or model requests are switched off.
    """
    try:
        provider, name = parse_spec(spec)
        cfg = provider_config(settings, provider)
    except ModelConfigError as exc:
        raise GatewayError(404, str(exc), code="model_not_found", param="model") from None
    if cfg.type != "openai":
        raise GatewayError(
            400,
            f"model {spec!r} is served by a {cfg.type!r} provider; the gateway forwards to"
            " OpenAI-compatible servers (an 'openai' provider, with a base_url for any other"
            " server): bind the role's alias to one",
            code="model_not_supported",
            param="model",
        )
    if not requests_allowed(cfg.type):
        raise GatewayError(
            503,
            f"model {spec!r} would make a real request, and CREWCHIEF_ALLOW_MODEL_REQUESTS"
            " switches them off",
            code="model_requests_off",
        )
    base_url = cfg.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL
    return Target(spec, name, base_url.rstrip("/"), api_key(cfg, "OPENAI_API_KEY"))


def _alias_chain(settings: Settings, alias: str) -> list[Target]:
    cfg = settings.models[alias]
    return [target(settings, spec) for spec in [cfg.model, *cfg.fallbacks]]


def route(settings: Settings, model: str, role: str) -> Route:
    """The models a request with this ``model`` field and role goes to.

    Raises:
        GatewayError: 404 for a model name that is no role, alias or spec.
    """
    alias = DEFAULT_ALIAS[role]
    if model == "auto" or role_in_model(model) is not None:
        return Route(_alias_chain(settings, alias), f"role {role} runs on the {alias} alias")
    if model in ALIASES:
        return Route(_alias_chain(settings, model), f"the {model} alias, as asked")
    if ":" not in model:
        raise GatewayError(
            404,
            f"unknown model {model!r}: name a role (e.g. 'architect' or 'crewchief/review'),"
            f" 'auto', an alias ({', '.join(ALIASES)}) or a model spec like 'openai:gpt-4o-mini'",
            code="model_not_found",
            param="model",
        )
    first = target(settings, model)
    rest = []
    for spec in [settings.models[alias].model, *settings.models[alias].fallbacks]:
        try:
            fallback = target(settings, spec)
        except GatewayError:
            continue  # a fallback the gateway cannot reach is left out, not an error
        if fallback.spec != first.spec:
            rest.append(fallback)
    return Route([first, *rest], f"{model} as asked, then role {role}'s {alias} alias")
