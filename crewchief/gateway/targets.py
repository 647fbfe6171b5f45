"""Which models a gateway request goes to, in the order they are tried.

The ``model`` field names a role (``architect``, ``crewchief/review``), ``auto``, an
alias (``orchestrator``, ``delegate``, ``fast``) or a concrete model spec
(``openai:gpt-4o-mini``). A role runs on its alias's model and fallbacks; a concrete
model is tried first, then the role's chain.

The gateway forwards requests as they are to OpenAI-compatible servers (``openai``
providers, with any ``base_url``), to the ``local`` models' llama-server, to Ollama's
OpenAI-compatible endpoint and to Vertex AI's (``google`` providers, with Application
Default Credentials): tools, response formats and every other field arrive exactly as the
client sent them.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace

from crewchief.config import ALIASES, ProviderConfig, Settings
from crewchief.effort import openai_supports_effort
from crewchief.errors import ModelConfigError
from crewchief.gateway.errors import GatewayError
from crewchief.gateway.google_auth import GOOGLE_TOKEN
from crewchief.gateway.roles import DEFAULT_ALIAS, role_in_model
from crewchief.gateway.routing import RoutingTable
from crewchief.models.credentials import OWNER, PLATFORM, Credential, OwnerCredentials, scrub
from crewchief.models.providers import api_key, parse_spec, provider_config, requests_allowed

OPENAI_URL = "https://api.openai.com/v1"
OLLAMA_URL = "http://127.0.0.1:11434"
# The Gemini API's OpenAI-compatible endpoint, where an owner's Gemini API key is used.
GEMINI_URL = "https://generativelanguage.googleapis.com/v1beta/openai"
LOCAL_URL = "local:"  # a local model's llama-server, started (and its URL known) on first use
FORWARDED = ("openai", "local", "ollama", "google")


@dataclass(frozen=True, slots=True)
class Target:
    """One model to try: its spec, the name sent upstream, and where it is served; with
    whose credentials (``paid_by``: the platform's, or the owner's stored key)."""

    spec: str
    model: str
    base_url: str
    api_key: str | None = field(repr=False)
    reasoning: bool = False  # takes ``reasoning_effort``
    token: Callable[[], Awaitable[str]] | None = None  # a bearer token fetched per call
    paid_by: str = PLATFORM
    credential: str | None = None  # the owner's credential's digest (never the key)

    @property
    def circuit(self) -> str:
        """The circuit it counts in: an owner's key failing (revoked, out of quota) must not
        take the model out of service for everyone else, nor the platform's for them."""
        return self.spec if self.credential is None else f"{self.spec}#{self.credential}"

    def scrub(self, text: str) -> str:
        """``text`` (an upstream's error) without the key it was sent with."""
        return scrub(text, [self.api_key]) if self.api_key else text


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
    if cfg.type not in FORWARDED:
        raise GatewayError(
            400,
            f"model {spec!r} is served by a {cfg.type!r} provider; the gateway forwards to"
            " OpenAI-compatible servers ('openai' providers, with a base_url for any other"
            " server), local models and Ollama: bind the role's alias to one of those",
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
    if cfg.type == "local":
        # llama-server on this machine: its address is known once it runs (LOCAL_URL).
        return Target(spec, name, LOCAL_URL, None, False)
    if cfg.type == "google":
        return _vertex(spec, name, cfg)
    if cfg.type == "ollama":  # Ollama's OpenAI-compatible endpoint
        base = (cfg.base_url or os.environ.get("OLLAMA_HOST") or OLLAMA_URL).rstrip("/")
        return Target(spec, name, base if base.endswith("/v1") else base + "/v1", None, False)
    base_url = cfg.base_url or os.environ.get("OPENAI_BASE_URL") or OPENAI_URL
    reasoning = cfg.reasoning if cfg.reasoning is not None else openai_supports_effort(name)
    return Target(spec, name, base_url.rstrip("/"), api_key(cfg, "OPENAI_API_KEY"), reasoning)


def _vertex(spec: str, name: str, cfg: ProviderConfig) -> Target:
    """Vertex AI's OpenAI-compatible endpoint for a Gemini model (``google/<name>``), with
    a token from Application Default Credentials; ``base_url`` overrides the endpoint (a
    private one, or a proxy)."""
    project = cfg.project or os.environ.get("GOOGLE_CLOUD_PROJECT")
    if not project:
        raise GatewayError(
            400,
            f"model {spec!r} needs a Google Cloud project (the provider's project, or"
            " $GOOGLE_CLOUD_PROJECT)",
            code="model_not_supported",
            param="model",
        )
    location = cfg.location or os.environ.get("GOOGLE_CLOUD_LOCATION") or "global"
    host = "aiplatform.googleapis.com"
    host = host if location == "global" else f"{location}-{host}"
    base = cfg.base_url or (
        f"https://{host}/v1/projects/{project}/locations/{location}/endpoints/openapi"
    )
    # Gemini 2.5 and later think, and take reasoning_effort; earlier ones refuse it.
    thinks = not name.startswith(("gemini-1", "gemini-2.0"))
    reasoning = cfg.reasoning if cfg.reasoning is not None else thinks
    return Target(spec, f"google/{name}", base.rstrip("/"), None, reasoning, GOOGLE_TOKEN)


def with_credential(target: Target, credential: Credential) -> Target:
    """``target`` with the owner's key: an OpenAI-compatible server at the owner's base URL
    (else the provider's), or Gemini through the Gemini API's OpenAI-compatible endpoint
    rather than Vertex AI."""
    key = credential.api_key.get_secret_value()
    if target.token is not None:  # Vertex AI on the platform's token: Gemini API on theirs
        name = parse_spec(target.spec)[1]
        return replace(target, model=name, base_url=GEMINI_URL, api_key=key, token=None,
                       paid_by=OWNER, credential=credential.digest)  # fmt: skip
    base_url = credential.base_url or target.base_url
    return replace(target, base_url=base_url, api_key=key, paid_by=OWNER,
                   credential=credential.digest)  # fmt: skip


def with_credentials(chosen: Route, credentials: OwnerCredentials | None) -> Route:
    """The route with each target of a provider the owner stored a key for going out with
    that key; the route itself when they stored none."""
    if not credentials:
        return chosen
    targets = []
    for t in chosen.targets:
        credential = credentials.get(parse_spec(t.spec)[0]) if t.base_url != LOCAL_URL else None
        targets.append(with_credential(t, credential) if credential is not None else t)
    return Route(targets, chosen.reason)


def _forwardable(settings: Settings, specs: list[str]) -> list[Target]:
    """The targets of ``specs`` the gateway can reach; the first one's error when none."""
    out, first_error = [], None
    for spec in dict.fromkeys(specs):
        try:
            out.append(target(settings, spec))
        except GatewayError as exc:
            first_error = first_error or exc  # left out of the chain, not an error
    if not out and first_error is not None:
        raise first_error
    return out


def _alias_specs(settings: Settings, alias: str) -> list[str]:
    cfg = settings.models[alias]
    return [cfg.model, *cfg.fallbacks]


def _role_specs(
    settings: Settings, role: str, table: RoutingTable | None, profile: str | None
) -> tuple[list[str], str]:
    """The role's models, best first: from the routing table when it ranks the role, else
    its alias; and why."""
    ranked = table.roles.get(role) if table is not None else None
    if table is not None and ranked is not None:
        first = ranked.profiles.get(profile) if profile else None
        why = f"the {profile} profile's pick, then " if first else ""
        specs = [s for s in (first, ranked.primary) if s] + ranked.fallbacks
        return specs, f"{why}the routing table of {table.created[:10]}: {ranked.reason}"
    alias = DEFAULT_ALIAS[role]
    return _alias_specs(settings, alias), f"role {role} runs on the {alias} alias"


def route(
    settings: Settings,
    model: str,
    role: str,
    table: RoutingTable | None = None,
    profile: str | None = None,
) -> Route:
    """The models a request with this ``model`` field, role and profile goes to, in order.

    Raises:
        GatewayError: 404 for a model name that is no role, alias or spec; the first
            model's error when none of the chain can be reached.
    """
    if model == "auto" or role_in_model(model) is not None:
        specs, reason = _role_specs(settings, role, table, profile)
        return Route(_forwardable(settings, specs), reason)
    if model in ALIASES:
        return Route(
            _forwardable(settings, _alias_specs(settings, model)), f"the {model} alias, as asked"
        )
    if ":" not in model:
        raise GatewayError(
            404,
            f"unknown model {model!r}: name a role (e.g. 'architect' or 'crewchief/review'),"
            f" 'auto', an alias ({', '.join(ALIASES)}) or a model spec like 'openai:gpt-4o-mini'",
            code="model_not_found",
            param="model",
        )
    first = target(settings, model)
    specs, _ = _role_specs(settings, role, table, profile)
    try:
        chain = _forwardable(settings, specs)
    except GatewayError:
        chain = []  # none of the role's models can be reached: the asked one alone
    rest = [t for t in chain if t.spec != first.spec]
    return Route([first, *rest], f"{model} as asked, then role {role}'s models")
