"""The alias layer: every model call in crewchief goes through :meth:`ModelRegistry.call`.

It resolves an alias to its primary model and fallbacks, applies the reasoning
effort, bounds the call in time, streams token deltas to a callback, reads
token usage from the reply, and reports every attempt (success or failure) to
a usage callback so the ledger sees each one.
"""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from cachetools import LRUCache
from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage

from crewchief.config import ALIASES, AliasConfig, Settings
from crewchief.effort import Effort, normalize_effort
from crewchief.errors import ModelCallError, ModelConfigError, NotAllowed
from crewchief.models._calls import (
    DeltaCallback,
    elapsed_ms,
    prompt_tokens,
    request_options,
    reserve_call,
    stated_cost,
    stream_reply,
)
from crewchief.models.credentials import (
    CREDENTIAL_TYPES,
    OWNER,
    PLATFORM,
    Credential,
    OwnerCredentials,
)
from crewchief.models.pricing import prices_for
from crewchief.models.providers import build_chat_model, parse_spec, provider_config
from crewchief.models.toolcalls import repair_tool_calls
from crewchief.models.types import CallInfo, CallRecord, Usage

if TYPE_CHECKING:
    from crewchief.runtime.budgets import Budgets, Hold, PayerLimits


@dataclass(slots=True)
class ModelReply:
    message: AIMessage
    alias: str
    model: str
    usage: Usage
    attempts: list[CallRecord] = field(default_factory=list)
    repairs: list[str] = field(default_factory=list)
    # Tool calls the model made to tools that were not offered: (name, args).
    refused: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    # The model a downgrading budget replaced (None: the call ran on its own model).
    downgraded_from: str | None = None

    @property
    def text(self) -> str:
        return self.message.text

    @property
    def truncated(self) -> bool:
        """Whether the model stopped at its output bound rather than at its own end."""
        meta = self.message.response_metadata or {}
        reason = meta.get("finish_reason") or meta.get("done_reason") or ""
        return str(reason).lower() in ("length", "max_tokens")


# Models built with owners' own keys kept at once (built again when evicted).
OWNED_MODELS = 256

# The call in progress, for models that want to know who is calling (the fake
# provider keys its replies by node and task).
current_call: ContextVar[CallInfo | None] = ContextVar("crewchief_current_call", default=None)

UsageCallback = Callable[[CallRecord], Awaitable[None]]
ModelOverride = BaseChatModel | str | AliasConfig
# A call's own ``temperature`` and ``max_tokens`` (AliasConfig's fields), over the alias's.
Tune = Mapping[str, float | int]


def _label(model: BaseChatModel) -> str:
    name = (
        getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__
    )
    provider = "fake" if model._llm_type == "crewchief-fake" else model._llm_type
    return f"{provider}:{name}"


class ModelRegistry:
    """Resolves aliases to models; thread- and task-safe; caches built models.

    Args:
        settings: Where alias bindings and provider settings come from.
        overrides: Per-alias replacements: a spec string, an :class:`AliasConfig`,
            or a ready chat model instance (used as is, with no fallbacks).
    """

    def __init__(self, settings: Settings, overrides: Mapping[str, ModelOverride] | None = None):
        self.settings = settings
        self._aliases: dict[str, AliasConfig] = dict(settings.models)
        self._instances: dict[str, BaseChatModel] = {}
        self._cache: dict[tuple[str, str, Effort, tuple[Any, ...]], BaseChatModel] = {}
        # Models built with an owner's own key, by the credential's digest (never the key):
        # the most recently used ones only.
        self._owned: LRUCache[tuple[Any, ...], BaseChatModel] = LRUCache(OWNED_MODELS)
        self._lock = threading.Lock()
        self.prices = prices_for(settings)
        # Budgets and plans (crewchief.runtime.budgets.Budgets), set by the services that
        # own this registry: None enforces nothing.
        self.budgets: Budgets | None = None
        for alias, value in (overrides or {}).items():
            self._set(alias, value)

    def _set(self, alias: str, value: ModelOverride) -> None:
        if alias not in ALIASES:
            raise ModelConfigError(
                f"unknown model alias {alias!r}; expected one of {list(ALIASES)}"
            )
        if isinstance(value, BaseChatModel):
            self._instances[alias] = value
        elif isinstance(value, AliasConfig):
            self._aliases[alias] = value
        elif isinstance(value, str):
            self._aliases[alias] = AliasConfig(model=value)
        else:
            raise ModelConfigError(
                f"model override for {alias!r} must be a spec, AliasConfig or chat model"
            )

    def with_overrides(self, overrides: Mapping[str, ModelOverride] | None) -> ModelRegistry:
        """A registry sharing this one's cache, with some aliases rebound."""
        if not overrides:
            return self
        clone = ModelRegistry.__new__(ModelRegistry)
        clone.settings = self.settings
        clone._aliases = dict(self._aliases)
        clone._instances = dict(self._instances)
        clone._cache = self._cache
        clone._owned = self._owned
        clone._lock = self._lock
        clone.prices = self.prices
        clone.budgets = self.budgets
        for alias, value in overrides.items():
            clone._set(alias, value)
        return clone

    def check(self) -> None:
        """Fail fast on a spec with a bad shape or an unknown provider (builds nothing).

        Raises:
            ModelConfigError: naming the alias and the spec.
        """
        for alias, cfg in self._aliases.items():
            if alias in self._instances:
                continue
            for spec in [cfg.model, *cfg.fallbacks]:
                try:
                    provider_config(self.settings, parse_spec(spec)[0])
                except ModelConfigError as exc:
                    raise ModelConfigError(f"models.{alias}: {exc}") from None

    def candidates(
        self,
        alias: str,
        effort: str | None,
        tune: Tune | None = None,
        credentials: OwnerCredentials | None = None,
    ) -> list[tuple[str, BaseChatModel]]:
        """The models to try for ``alias``, primary first. Builds lazily and caches.

        ``tune`` sets the alias's ``temperature`` and ``max_tokens`` for these models
        (each combination is built once and cached like the alias's own). A model of a
        provider ``credentials`` holds a key for is built with that key (see
        :meth:`credential_for`), and cached apart.
        """
        level = normalize_effort(effort)
        if alias in self._instances:
            model = self._instances[alias]
            return [(_label(model), model)]
        if alias not in self._aliases:
            raise ModelConfigError(
                f"unknown model alias {alias!r}; expected one of {list(ALIASES)}"
            )
        cfg = self._aliases[alias]
        tuned = tuple(sorted((tune or {}).items()))
        if tuned:
            cfg = cfg.model_copy(update=dict(tuned))
        out = []
        for spec in [cfg.model, *cfg.fallbacks]:
            credential = self.credential_for(spec, credentials)
            out.append((spec, self._built((alias, spec, level, tuned), cfg, credential)))
        return out

    def _built(
        self, key: tuple[str, str, Effort, tuple[Any, ...]], cfg: AliasConfig,
        credential: Credential | None,
    ) -> BaseChatModel:  # fmt: skip
        """The model of ``key`` (alias, spec, effort, tune), built once: with the platform's
        credentials, or with the owner's ``credential``."""
        _, spec, level, _ = key
        cache: Any = self._cache if credential is None else self._owned
        cached = key if credential is None else (*key, credential.digest)
        with self._lock:
            model = cache.get(cached)
            if model is None:
                model = build_chat_model(spec, level, self.settings, cfg, credential)
                cache[cached] = model
            return model

    def credential_for(self, spec: str, credentials: OwnerCredentials | None) -> Credential | None:
        """The owner's credential a model of ``spec`` is called with: theirs for the spec's
        provider, when they stored one and the provider takes one (openai, google)."""
        if not credentials:
            return None
        provider = parse_spec(spec)[0]
        credential = credentials.get(provider)
        if credential is None or provider_config(self.settings, provider).type not in (
            CREDENTIAL_TYPES
        ):
            return None
        return credential

    def local_models(self) -> list[tuple[str, BaseChatModel]]:
        """The ``local:`` models bound to any alias (primary or fallback), one per spec."""
        seen: dict[str, BaseChatModel] = {}
        for alias in ALIASES:
            if alias in self._instances:
                continue
            for spec, model in self.candidates(alias, "medium"):
                if model._llm_type == "local":
                    seen.setdefault(spec, model)
        return list(seen.items())

    def close(self) -> None:
        """Stop what the built models hold (local model servers). Blocking."""
        with self._lock:
            models = list(self._cache.values())
        for model in models:
            if callable(close := getattr(model, "close", None)):
                close()

    async def call(
        self,
        alias: str,
        messages: Sequence[BaseMessage],
        *,
        effort: str | None,
        info: CallInfo,
        on_delta: DeltaCallback | None = None,
        on_usage: UsageCallback | None = None,
        tools: Sequence[dict[str, Any]] | None = None,
        schema: dict[str, Any] | None = None,
        tune: Tune | None = None,
        credentials: OwnerCredentials | None = None,
    ) -> ModelReply:
        """Call the model bound to ``alias``, falling back in order on failure.

        Args:
            tools: OpenAI-format tool specs to offer. The reply's tool calls are
                repaired (see :mod:`crewchief.models.toolcalls`).
            schema: A JSON schema the reply must follow; sent as structured
                output where the provider supports it (OpenAI-compatible servers,
                llama.cpp, Ollama). Callers still validate the reply.
            tune: This call's ``temperature`` and ``max_tokens``, over the alias's.
            credentials: The keys the caller's owner stored: a model of a provider they
                hold one for goes out with it (its ledger row says ``paid_by: owner``), and
                the key is scrubbed from its errors.

        Raises:
            ModelCallError: every candidate failed (the message names each error).
            asyncio.CancelledError: the caller was cancelled; no fallback is tried.
        """
        level = normalize_effort(effort)
        plan = None
        if self.budgets is not None:
            plan = await self.budgets.limits(info.owner, info.api_key_id)
            level = plan.effort(level)
        errors: list[str] = []
        attempts: list[CallRecord] = []
        downgraded: str | None = None
        config: dict[str, Any] = {
            "metadata": {
                "crewchief_node": info.node,
                "crewchief_alias": alias,
                "crewchief_task": info.task,
            },
            "run_name": f"{info.node}:{alias}",
        }
        bound = self._output_bound(alias, tune)
        prompt = functools.cache(lambda: prompt_tokens(messages, tools))  # counted once, if needed
        for label, model in self.candidates(alias, level, tune, credentials):
            if plan is not None and not plan.allows(label):
                errors.append(f"{label}: not allowed by plan {plan.plan_name!r}")
                continue
            owned = self.credential_for(label, credentials)
            hold, label, model, downgraded = await self._admit(
                plan, info, label, model, prompt, bound, level, tune, owned
            )
            started = time.perf_counter()
            token = current_call.set(replace(info, effort=level, alias=alias))
            try:
                # Local models pull, build and start here, outside the per-call time limit.
                if (prepare := getattr(model, "aprepare", None)) is not None:
                    await prepare()
                started = time.perf_counter()
                runnable, kwargs = request_options(model, tools, schema)
                async with asyncio.timeout(self.settings.model_timeout):
                    message = await stream_reply(runnable, messages, config, info, on_delta, kwargs)
            except asyncio.CancelledError:
                if hold is not None:
                    await asyncio.shield(hold.release())
                raise
            except Exception as exc:  # noqa: BLE001 - any provider failure triggers the fallback
                if hold is not None:
                    await hold.release()
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if isinstance(exc, TimeoutError):
                    reason = f"timed out after {self.settings.model_timeout:g}s"
                reason = _scrubbed(reason, owned)
                cost = self.prices.cost(label, Usage())
                record = CallRecord(
                    info, alias, label, level, Usage(), elapsed_ms(started), reason, cost
                )
                record.paid_by = _paid_by(owned)
                attempts.append(record)
                errors.append(f"{label}: {reason}")
                if on_usage:
                    await on_usage(record)
                continue
            finally:
                current_call.reset(token)
            usage = Usage.from_message(message)
            cost = self.prices.cost(label, usage, stated_cost(message))
            if hold is not None:
                await hold.settle(cost.usd)
            record = CallRecord(info, alias, label, level, usage, elapsed_ms(started), None, cost)
            record.paid_by = _paid_by(owned)
            attempts.append(record)
            if on_usage:
                await on_usage(record)
            repairs: list[str] = []
            refused: list[tuple[str, dict[str, Any]]] = []
            if tools is not None:
                repair = repair_tool_calls(message, tools, messages)
                message, repairs, refused = repair.message, repair.notes, repair.refused
            return ModelReply(message, alias, label, usage, attempts, repairs, refused, downgraded)
        raise _failed(alias, plan, attempts, errors)

    def _output_bound(self, alias: str, tune: Tune | None) -> int:
        """The most output tokens one call of ``alias`` may produce (what the provider is
        told, see :func:`crewchief.models.providers.build_chat_model`)."""
        asked = (tune or {}).get("max_tokens")
        cfg = self._aliases.get(alias)
        configured = cfg.max_tokens if cfg is not None and alias not in self._instances else None
        return int(asked or configured or self.settings.max_output_tokens)

    async def _admit(
        self,
        plan: PayerLimits | None,
        info: CallInfo,
        label: str,
        model: BaseChatModel,
        prompt: Callable[[], int],
        bound: int,
        level: Effort,
        tune: Tune | None,
        owned: Credential | None,
    ) -> tuple[Hold | None, str, BaseChatModel, str | None]:
        """Reserve the call on the payer's budgets (see :func:`reserve_call`); none for a
        call the owner's own key pays the provider for (``owned``)."""
        if self.budgets is None or plan is None or not plan.limits or owned is not None:
            return None, label, model, None
        return await reserve_call(
            self.budgets, self.prices, info, (label, model), prompt(), bound,
            lambda: self.downgrade_model(level, tune),
        )  # fmt: skip

    def downgrade_model(self, level: Effort, tune: Tune | None) -> tuple[str, BaseChatModel]:
        """The model an exhausted, downgrading budget answers with: ``budgets.downgrade_model``,
        else the ``delegate`` alias's primary model."""
        spec = self.settings.budgets.downgrade_model
        if spec is None:
            return self.candidates("delegate", level, tune)[0]
        cfg = self._aliases["delegate"].model_copy(update={"model": spec, "fallbacks": []})
        tuned = tuple(sorted((tune or {}).items()))
        if tuned:
            cfg = cfg.model_copy(update=dict(tuned))
        key = ("downgrade", spec, level, tuned)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = build_chat_model(spec, level, self.settings, cfg)
            return spec, self._cache[key]


def _failed(
    alias: str, plan: PayerLimits | None, attempts: list[CallRecord], errors: list[str]
) -> Exception:
    """The error of a call no candidate answered: none was allowed by the plan, or each
    one failed."""
    if plan is not None and not attempts:
        return NotAllowed(
            f"no model of alias {alias!r} is allowed by plan {plan.plan_name!r}: "
            + "; ".join(errors)
        )
    return ModelCallError(f"every model for alias {alias!r} failed: " + "; ".join(errors))


def _paid_by(credential: Credential | None) -> str:
    return PLATFORM if credential is None else OWNER


def _scrubbed(reason: str, credential: Credential | None) -> str:
    """An attempt's error without the owner's key (a provider's 401 may quote it)."""
    return reason if credential is None else credential.scrub(reason)
