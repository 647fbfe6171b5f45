"""A node's model conversation kept within its model's window (the task executors' tool
loops and the planner's exploration): see :mod:`crewchief.knowledge.window`."""

from __future__ import annotations

from langchain_core.messages import BaseMessage, HumanMessage, SystemMessage

from crewchief.knowledge.window import (
    LANGCHAIN,
    SUMMARY_TEMPERATURE,
    fit,
    model_window,
    summary_instructions,
)
from crewchief.runtime.deps import NodeDeps

_SUMMARIZED = {"written": "summarized", "note": "left out (no summary could be had)", "none": ""}


def _spec(deps: NodeDeps, alias: str) -> str:
    """The spec of the model that answers ``alias`` first in this run ("" if unknown)."""
    try:
        return deps.models.candidates(alias, "medium")[0][0]
    except Exception:  # noqa: BLE001 - an alias that cannot be built fails in the call itself
        return ""


async def fit_to_window(
    deps: NodeDeps,
    messages: list[BaseMessage],
    alias: str,
    *,
    node: str,
    operation_id: str,
    task: int | None = None,
) -> str | None:
    """Shorten ``messages`` in place when they outgrow ``context_share`` of the window of
    ``alias``'s model (the summary stays for the calls that follow); a note of what was
    done, or None when nothing was.

    Raises:
        WindowError: not even the system messages and the latest turn fit.
    """
    settings = deps.settings
    spec = _spec(deps, alias)
    window = model_window(settings, spec)

    async def summarize(transcript: str, most: int) -> str:
        reply = await deps.call_model(
            "fast",
            [SystemMessage(summary_instructions(most)), HumanMessage(transcript)],
            effort="low",
            node=node,
            operation_id=operation_id,
            task=task,
            purpose="context_summary",
            tune={"temperature": SUMMARY_TEMPERATURE, "max_tokens": most},
            quiet=True,
        )
        return reply.text

    fitted = await fit(
        messages,
        LANGCHAIN,
        window=window,
        share=settings.context_share,
        reserve=min(settings.max_output_tokens, window // 2),
        keep_last=settings.context_keep_last,
        model=spec,
        summarize=summarize,
    )
    trimmed = fitted.trimmed
    if not trimmed.changed:
        return None
    messages[:] = fitted.messages
    what = [f"{trimmed.summarized} earlier messages {_SUMMARIZED[trimmed.summary]}"]
    if trimmed.cut:
        what.append(f"{len(trimmed.cut)} long messages cut in the middle")
    return (
        f"context trimmed to fit {spec or 'the model'}'s window ({window:,} tokens):"
        f" {', '.join(what)}; {trimmed.tokens_before:,} → {trimmed.tokens_after:,} tokens"
    )
