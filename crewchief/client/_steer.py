"""Steering an operation that waits or has ended: the plan decision and task re-runs.

:class:`SteeringMixin` gives :class:`crewchief.Crewchief` ``review_plan`` and
``rerun_task``; a re-run is a fork of the operation's graph from the
checkpoint before the task ran.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from langgraph.types import Command

from crewchief.db import repository
from crewchief.errors import OperationStateError, TaskNotFound
from crewchief.nodes._plan_parsing import gerund
from crewchief.results import OperationResult
from crewchief.state import PlannedTask
from crewchief.steering import dependents

if TYPE_CHECKING:
    from crewchief.client.facade import OperationHandle

# Statuses a run records just before it returns (it ended, or waits for a plan decision).
_SETTLED = ("completed", "failed", "cancelled", "rejected", "awaiting_approval")


class SteeringMixin:
    """``review_plan`` and ``rerun_task`` for :class:`crewchief.Crewchief`."""

    async def review_plan(
        self, operation_id: str, decision: Any, *, owner: Any = repository.ANY_OWNER
    ) -> OperationHandle:
        """Give an operation that is ``awaiting_approval`` the reviewer's decision.

        ``decision`` is ``{"action": "accept"}``, ``{"action": "edit", "tasks": [...]}``,
        ``{"action": "replan", "feedback": "..."}`` or ``{"action": "reject"}``
        (or one of the models in :mod:`crewchief.steering`). The decision is
        recorded before this returns; the run continues in the background.

        Raises:
            OperationNotFound: unknown id (or another owner's).
            OperationStateError: the operation is not waiting for a decision.
            InvalidDecision: the decision is invalid (nothing is recorded).
        """
        from crewchief.nodes._plan_parsing import plan_text
        from crewchief.steering import EditPlan, RejectPlan, edited_tasks, parse_decision

        current = await self._settled(operation_id, owner)
        decision = parse_decision(decision)
        if current.status != "awaiting_approval" or operation_id in self._runs:
            raise OperationStateError(
                f"operation {operation_id} is {current.status}, not awaiting_approval"
            )
        snapshot = await self._graph.aget_state({"configurable": {"thread_id": operation_id}})
        if not snapshot.interrupts:
            raise OperationStateError(f"operation {operation_id} has no plan waiting for review")
        tasks = text = None
        if isinstance(decision, EditPlan):
            skills = await asyncio.to_thread(self._skill_names, current.workspace)
            tasks = edited_tasks(decision, skills=skills, max_tasks=self.settings.max_plan_tasks)
            text = plan_text(tasks, "Plan edited by the reviewer.")
        plan_round = snapshot.values.get("plan_round") or 1
        # Recorded here so the caller sees the new status at once (the node's write is then a
        # no-op), and only once: a second decision on the same round is refused.
        recorded = await self.services.recorder.plan_reviewed(
            operation_id,
            plan_round=plan_round,
            action=decision.action,
            tasks=tasks,
            text=text,
            feedback=getattr(decision, "feedback", None),
        )
        if not recorded:
            raise OperationStateError(
                f"operation {operation_id} already has a decision on plan round {plan_round}"
            )
        if isinstance(decision, RejectPlan):
            reason = f"plan rejected: {decision.reason}" if decision.reason else "plan rejected"
            await self.services.recorder.finish(operation_id, "rejected", error=reason)
        command = Command(resume=decision.model_dump(exclude_none=True))
        return self._launch(operation_id, command, current.workspace, current.options)

    async def _settled(self, operation_id: str, owner: Any) -> OperationResult:
        """The operation as stored, once a run that already recorded where it stopped returned.

        A run records its end (or its wait for a plan decision) a moment before it
        returns; a decision or re-run in that moment waits for it instead of failing.
        """
        current = await self.get(operation_id, owner=owner)
        task = self._runs.get(operation_id)
        if task is not None and current.status in _SETTLED:
            await asyncio.wait({task}, timeout=10)
            current = await self.get(operation_id, owner=owner)
        return current

    def _skill_names(self, workspace: str | None) -> set[str]:
        from crewchief.skills.registry import skill_registry

        registry = skill_registry(self.settings)
        return {m.name for m in registry.usable(workspace=bool(workspace))}

    async def rerun_task(
        self,
        operation_id: str,
        sequence: int,
        *,
        description: str | None = None,
        instructions: str | None = None,
        owner: Any = repository.ANY_OWNER,
    ) -> OperationHandle:
        """Run a task again, and every task that depends on it, then synthesize again.

        The graph forks from the checkpoint before the task ran; the other tasks
        keep their results. The earlier versions of the re-run tasks stay in the
        operation's history (``TaskResult.history``).

        Raises:
            OperationNotFound: unknown id (or another owner's).
            TaskNotFound: the operation has no such task.
            OperationStateError: the operation has not ended, or was rejected.
        """

        current = await self._settled(operation_id, owner)
        if operation_id in self._runs or current.status not in ("completed", "failed", "cancelled"):
            raise OperationStateError(
                f"operation {operation_id} is {current.status}: only an operation that ended"
                " (completed, failed or cancelled) can re-run a task"
            )
        latest, base = await fork_point(self._graph, operation_id, sequence)
        affected = dependents(latest.values["plan"], sequence)
        versions = await self.services.recorder.task_rerun(
            operation_id,
            sequence=sequence,
            affected=affected,
            description=description,
            instructions=instructions,
        )
        values = fork_values(
            latest,
            sequence,
            description=description,
            instructions=instructions,
            versions=versions,
        )
        sub = self.services.bus.subscribe(operation_id)
        try:
            await self._graph.aupdate_state(base.config, values, as_node="dispatch")
        except BaseException as exc:
            sub.close()
            await self.services.recorder.finish(operation_id, "failed", error=f"rerun: {exc}")
            raise
        handle = self._launch(operation_id, None, current.workspace, current.options, sub)
        handle.rerun = {"task": sequence, "version": versions[sequence], "dependents": affected}
        return handle


async def fork_point(graph: Any, operation_id: str, sequence: int) -> tuple[Any, Any]:
    """The latest state and the checkpoint just before ``sequence`` ran, on its lineage.

    Walks back from the latest checkpoint through each one's parent to the newest
    checkpoint whose results do not include the task yet.

    Raises:
        TaskNotFound: the plan has no such task.
        OperationStateError: no checkpoints, or a dependency of the task did not complete.
    """
    config = {"configurable": {"thread_id": operation_id}}
    latest = await graph.aget_state(config)
    plan: list[PlannedTask] = latest.values.get("plan") or []
    if not latest.values:
        raise OperationStateError(f"operation {operation_id} has no checkpoint to fork from")
    if not any(t["id"] == sequence for t in plan):
        raise TaskNotFound(f"operation {operation_id} has no task {sequence}")
    results = latest.values.get("results") or {}
    task = next(t for t in plan if t["id"] == sequence)
    broken = [d for d in task["depends_on"] if results.get(str(d), {}).get("status") != "completed"]
    if broken:
        raise OperationStateError(
            f"task {sequence} depends on task {broken[0]}, which did not complete: re-run that one"
        )
    snapshot = latest
    while snapshot is not None:
        values = snapshot.values or {}
        if values.get("plan") and str(sequence) not in (values.get("results") or {}):
            return latest, snapshot
        parent = snapshot.parent_config
        snapshot = await graph.aget_state(parent) if parent else None
    raise OperationStateError(f"no checkpoint of operation {operation_id} precedes task {sequence}")


def fork_values(
    latest: Any,
    sequence: int,
    *,
    description: str | None,
    instructions: str | None,
    versions: dict[int, int],
) -> dict[str, Any]:
    """The state update for the fork: the changed plan, and the results that stay."""
    plan: list[PlannedTask] = [dict(t) for t in latest.values["plan"]]  # type: ignore[misc]
    for task in plan:
        if task["id"] in versions:
            task["version"] = versions[task["id"]]
        if task["id"] == sequence:
            if description:
                task["description"] = description
                task["active_form"] = gerund(description)
            if instructions is not None:
                task["instructions"] = instructions
    rerun = {sequence, *dependents(plan, sequence)}
    kept = {k: v for k, v in (latest.values.get("results") or {}).items() if int(k) not in rerun}
    return {
        "plan": plan,
        "results": kept,
        "status": "running",
        "answer": "",
        "error": None,
    }
