"""The alias layer: every model call in crewchief goes through :meth:`ModelRegistry.call`.

It resolves an alias to its primary model and fallbacks, applies the reasoning
effort, bounds the call in time, streams token deltas to a callback, reads
token usage from the reply, and reports every attempt (success or failure) to
a usage callback so the ledger sees each one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import add_ai_message_chunks
from langchain_core.runnables import Runnable

from crewchief.config import ALIASES, AliasConfig, Settings
from crewchief.effort import Effort, normalize_effort
from crewchief.errors import ModelCallError, ModelConfigError
from crewchief.models.pricing import prices_for, reported
from crewchief.models.providers import build_chat_model, parse_spec, provider_config
from crewchief.models.toolcalls import repair_tool_calls
from crewchief.models.types import CallInfo, CallRecord, Usage


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

    @property
    def text(self) -> str:
        return self.message.text

    @property
    def truncated(self) -> bool:
        """Whether the model stopped at its output bound rather than at its own end."""
        meta = self.message.response_metadata or {}
        reason = meta.get("finish_reason") or meta.get("done_reason") or ""
        return str(reason).lower() in ("length", "max_tokens")


# The call in progress, for models that want to know who is calling (the fake
# provider keys its replies by node and task).
current_call: ContextVar[CallInfo | None] = ContextVar("crewchief_current_call", default=None)

DeltaCallback = Callable[[CallInfo, str], Awaitable[None]]
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
        self._lock = threading.Lock()
        self.prices = prices_for(settings)
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
        clone._lock = self._lock
        clone.prices = self.prices
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
        self, alias: str, effort: str | None, tune: Tune | None = None
    ) -> list[tuple[str, BaseChatModel]]:
        """The models to try for ``alias``, primary first. Builds lazily and caches.

        ``tune`` sets the alias's ``temperature`` and ``max_tokens`` for these models
        (each combination is built once and cached like the alias's own).
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
            key = (alias, spec, level, tuned)
            with self._lock:
                if key not in self._cache:
                    self._cache[key] = build_chat_model(spec, level, self.settings, cfg)
                out.append((spec, self._cache[key]))
        return out

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
    ) -> ModelReply:
        """Call the model bound to ``alias``, falling back in order on failure.

        Args:
            tools: OpenAI-format tool specs to offer. The reply's tool calls are
                repaired (see :mod:`crewchief.models.toolcalls`).
            schema: A JSON schema the reply must follow; sent as structured
                output where the provider supports it (OpenAI-compatible servers,
                llama.cpp, Ollama). Callers still validate the reply.
            tune: This call's ``temperature`` and ``max_tokens``, over the alias's.

        Raises:
            ModelCallError: every candidate failed (the message names each error).
            asyncio.CancelledError: the caller was cancelled; no fallback is tried.
        """
        level = normalize_effort(effort)
        errors: list[str] = []
        attempts: list[CallRecord] = []
        config: dict[str, Any] = {
            "metadata": {
                "crewchief_node": info.node,
                "crewchief_alias": alias,
                "crewchief_task": info.task,
            },
            "run_name": f"{info.node}:{alias}",
        }
        for label, model in self.candidates(alias, level, tune):
            started = time.perf_counter()
            token = current_call.set(replace(info, effort=level, alias=alias))
            try:
                # Local models pull, build and start here, outside the per-call time limit.
                if (prepare := getattr(model, "aprepare", None)) is not None:
                    await prepare()
                started = time.perf_counter()
                runnable, kwargs = _request_options(model, tools, schema)
                async with asyncio.timeout(self.settings.model_timeout):
                    message = await _stream(runnable, messages, config, info, on_delta, kwargs)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - any provider failure triggers the fallback
                reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                if isinstance(exc, TimeoutError):
                    reason = f"timed out after {self.settings.model_timeout:g}s"
                cost = self.prices.cost(label, Usage())
                record = CallRecord(info, alias, label, level, Usage(), _ms(started), reason, cost)
                attempts.append(record)
                errors.append(f"{label}: {reason}")
                if on_usage:
                    await on_usage(record)
                continue
            finally:
                current_call.reset(token)
            usage = Usage.from_message(message)
            cost = self.prices.cost(label, usage, stated_cost(message))
            record = CallRecord(info, alias, label, level, usage, _ms(started), None, cost)
            attempts.append(record)
            if on_usage:
                await on_usage(record)
            repairs: list[str] = []
            refused: list[tuple[str, dict[str, Any]]] = []
            if tools is not None:
                repair = repair_tool_calls(message, tools, messages)
                message, repairs, refused = repair.message, repair.notes, repair.refused
            return ModelReply(message, alias, label, usage, attempts, repairs, refused)
        raise ModelCallError(f"every model for alias {alias!r} failed: " + "; ".join(errors))


def stated_cost(message: BaseMessage) -> float | None:
    """The cost in dollars a reply states: ``response_metadata["cost"]`` (where the
    provider adapters put it), or the raw usage's ``cost`` of a non-streamed reply."""
    meta = message.response_metadata or {}
    if (cost := reported(meta.get("cost"))) is not None:
        return cost
    raw = meta.get("token_usage")
    return reported(raw.get("cost")) if isinstance(raw, dict) else None


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def _request_options(
    model: BaseChatModel,
    tools: Sequence[dict[str, Any]] | None,
    schema: dict[str, Any] | None,
) -> tuple[Runnable, dict[str, Any]]:
    """The model with tools bound, and the keyword arguments asking for structured output."""
    runnable: Runnable = model.bind_tools(list(tools)) if tools else model
    kwargs: dict[str, Any] = {}
    if schema is not None:
        kind = model._llm_type
        if kind in ("openai-chat", "local"):
            # Through extra_body, so the reply still streams like any other.
            kwargs["extra_body"] = {
                "response_format": {
                    "type": "json_schema",
                    "json_schema": {"name": "reply", "schema": schema, "strict": True},
                }
            }
        elif kind == "chat-ollama":
            kwargs["format"] = schema
    return runnable, kwargs


async def _stream(
    model: Runnable,
    messages: Sequence[BaseMessage],
    config: dict[str, Any],
    info: CallInfo,
    on_delta: DeltaCallback | None,
    kwargs: dict[str, Any],
) -> AIMessage:
    chunks: list[AIMessageChunk] = []
    async for chunk in model.astream(list(messages), config=config, **kwargs):
        chunks.append(chunk)
        if on_delta is not None and chunk.text:
            await on_delta(info, chunk.text)
    if not chunks:
        raise ModelCallError("the model returned no output")
    # One merge at the end: adding chunk by chunk rebuilds the message every time.
    merged = chunks[0] if len(chunks) == 1 else add_ai_message_chunks(chunks[0], *chunks[1:])
    return AIMessage(
        content=merged.content,
        tool_calls=merged.tool_calls,
        usage_metadata=merged.usage_metadata,
        response_metadata=merged.response_metadata,
        additional_kwargs=merged.additional_kwargs,
    )
