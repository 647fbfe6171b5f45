"""The pieces of one model call: how it streams, how it asks for structured output, what
its reply says it cost, and its reservation on the payer's budgets."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.language_models.chat_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.messages.ai import add_ai_message_chunks
from langchain_core.runnables import Runnable

from crewchief.errors import BudgetExceeded, ModelCallError
from crewchief.models.pricing import PriceTable, reported
from crewchief.models.tokens import count_tokens
from crewchief.models.types import CallInfo

if TYPE_CHECKING:
    from crewchief.runtime.budgets import Budgets, Hold

DeltaCallback = Callable[[CallInfo, str], Awaitable[None]]


def prompt_tokens(
    messages: Sequence[BaseMessage], tools: Sequence[dict[str, Any]] | None = None
) -> int:
    """The tokens a call's input takes, counted with tiktoken (a few per message for the
    chat format's framing), tools' schemas included."""
    texts = [m.text if isinstance(m.content, list) else str(m.content) for m in messages]
    for m in messages:
        calls = getattr(m, "tool_calls", None)
        if calls:
            texts.append(json.dumps(calls, default=str))
    if tools:
        texts.append(json.dumps(list(tools)))
    return count_tokens("\n".join(texts)) + 4 * len(messages)


async def reserve_call(
    budgets: Budgets,
    prices: PriceTable,
    info: CallInfo,
    chosen: tuple[str, BaseChatModel],
    prompt: int,
    bound: int,
    downgrade: Callable[[], tuple[str, BaseChatModel]],
) -> tuple[Hold | None, str, BaseChatModel, str | None]:
    """Reserve the call's largest cost (``prompt`` tokens in, ``bound`` out) on the payer's
    budgets; a budget whose owner chose it downgrades the call to ``downgrade()``'s model
    once exhausted.

    Returns:
        The reservation (None: the call is free), the model to call and its label, and the
        model it replaced (None: no downgrade).

    Raises:
        BudgetExceeded: a hard budget has no room (even for the downgrade).
    """
    label, model = chosen
    try:
        hold = await budgets.reserve(
            info.owner, info.api_key_id, prices.estimate(label, prompt, bound),
            operation_id=info.operation_id,
        )  # fmt: skip
        return hold, label, model, None
    except BudgetExceeded as exc:
        if not exc.downgrade:
            raise
        cheaper, cheap = downgrade()
        if cheaper == label:
            raise
    hold = await budgets.reserve(
        info.owner, info.api_key_id, prices.estimate(cheaper, prompt, bound),
        operation_id=info.operation_id,
    )  # fmt: skip
    return hold, cheaper, cheap, label


def stated_cost(message: BaseMessage) -> float | None:
    """The cost in dollars a reply states: ``response_metadata["cost"]`` (where the
    provider adapters put it), or the raw usage's ``cost`` of a non-streamed reply."""
    meta = message.response_metadata or {}
    if (cost := reported(meta.get("cost"))) is not None:
        return cost
    raw = meta.get("token_usage")
    return reported(raw.get("cost")) if isinstance(raw, dict) else None


def elapsed_ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)


def request_options(
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


async def stream_reply(
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
