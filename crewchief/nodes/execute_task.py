"""Carry out one task of the plan with the delegate model."""

from __future__ import annotations

import asyncio
from typing import Any

from langchain_core.messages import HumanMessage, SystemMessage

from crewchief import prompts
from crewchief.graphs.state import TaskInput, TaskOutcome
from crewchief.services import NodeDeps


def _messages(state: TaskInput) -> list:
    task = state["task"]
    deps_text = "\n\n".join(
        f"{prompts.RESULT_MARKER} {dep}:\n{result}"
        for dep, result in sorted(state["dependencies"].items(), key=lambda kv: int(kv[0]))
    )
    user = prompts.TASK_USER.format(
        request_marker=prompts.REQUEST_MARKER,
        request=state["request"],
        task_marker=prompts.TASK_MARKER,
        description=task["description"],
        workspace=state.get("workspace") or "(none)",
        dependencies=("\nResults of the tasks this one depends on:\n\n" + deps_text)
        if deps_text
        else "",
    )
    return [SystemMessage(prompts.TASK_SYSTEM), HumanMessage(user)]


async def execute_task(state: TaskInput, deps: NodeDeps) -> dict[str, Any]:
    """Run one task: pending → in_progress → completed | failed, one event per move.

    A task that already ended (the node is re-running after a crash that hit
    before the checkpoint was written) is not run again: its stored outcome is
    returned as is.
    """
    op, task = state["operation_id"], state["task"]
    seq, key = task["id"], str(task["id"])
    async with deps.services.task_slots(op, deps.max_parallel):
        done = await deps.recorder.task_started(op, seq, task["active_form"])
        if done is not None:
            outcome: TaskOutcome = {
                "status": done.status,
                "result": done.result,
                "error": done.error,
            }
            return {"results": {key: outcome}}
        try:
            reply = await deps.call_model(
                "delegate",
                _messages(state),
                effort="medium",
                node="execute_task",
                operation_id=op,
                task=seq,
            )
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a task failure is reported, not raised
            error = str(exc) or type(exc).__name__
            await deps.recorder.task_failed(op, seq, error)
            return {"results": {key: {"status": "failed", "result": None, "error": error}}}
    await deps.recorder.task_completed(
        op, seq, result=reply.text, model=reply.model, usage=reply.usage
    )
    return {"results": {key: {"status": "completed", "result": reply.text, "error": None}}}
