"""Answer a simple request with one call: the fast tier's alias and effort (orchestrator, low)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from crewchief import prompts
from crewchief.errors import BudgetExceeded, NotAllowed
from crewchief.runtime.deps import NodeDeps
from crewchief.state import OperationState

log = logging.getLogger(__name__)


async def fast_path(state: OperationState, deps: NodeDeps) -> dict[str, Any]:
    """One call, no tools. On failure the operation falls back to planning."""
    op = state["operation_id"]
    messages = [SystemMessage(prompts.FAST_PATH_SYSTEM), HumanMessage(state["request"])]
    tier = deps.tier("fast")
    try:
        reply = await deps.call_model(
            tier.alias, messages, effort=tier.effort, node="fast_path", operation_id=op
        )
        if not reply.text.strip():
            raise ValueError("the model returned an empty answer")
    except asyncio.CancelledError:
        raise
    except (BudgetExceeded, NotAllowed):
        raise  # the payer's limits end the operation: another model would not help
    except Exception as exc:  # noqa: BLE001 - any failure means: plan instead
        error = str(exc) or type(exc).__name__
        log.warning("fast path failed for %s, falling back to planning: %s", op, error)
        await deps.recorder.fast_path_failed(op, error)
        simplicity = {**(state.get("simplicity") or {}), "tier": "balanced"}
        return {"route": "plan", "fast_path_error": error, "simplicity": simplicity}
    await deps.recorder.finish(op, "completed", answer=reply.text)
    return {"answer": reply.text, "status": "completed"}
