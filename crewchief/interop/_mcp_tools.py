"""The MCP tools and resources: each a call of the :class:`~crewchief.client.facade.Crewchief`
facade, scoped to the caller's owner as the REST API scopes it.

Argument types and descriptions become the tools' JSON schemas; what a tool returns becomes
its structured result. A crewchief error becomes a tool error with its message.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.exceptions import ResourceNotFoundError, ToolError
from pydantic import Field

from crewchief.client.facade import Crewchief
from crewchief.client.validate import MAX_REQUEST_CHARS
from crewchief.errors import CrewchiefError, OperationNotFound
from crewchief.interop import _mcp_wait
from crewchief.interop._mcp_models import (
    Accepted,
    Rerun,
    Skills,
    Waited,
    accepted,
    next_step,
)
from crewchief.results import OperationResult
from crewchief.steering import MAX_TEXT, InvalidDecision, PlanTaskEdit, parse_decision

OperationId = Annotated[
    str,
    Field(min_length=1, max_length=64, description="The operation's id (start_operation's `id`)."),
]
Alias = Literal["orchestrator", "delegate", "fast"]
Text = Annotated[str | None, Field(min_length=1, max_length=MAX_TEXT)]


@contextlib.contextmanager
def tool_errors() -> Iterator[None]:
    """A crewchief error (invalid input, not found, a status that does not allow it, a
    budget) as a tool error carrying its message; anything else is the server's crash."""
    try:
        yield
    except CrewchiefError as exc:
        raise ToolError(str(exc)) from exc


class Tools:
    """The tools of one MCP server, on one open Crewchief.

    Args:
        chief: The open facade.
        caller: The caller of the current request (``owner``, ``key_id``, ``scope``).
        workspace_rule: The server's rule on a workspace (roots), returning the one to use.
        models_rule: The server's rule on per-operation model bindings.
    """

    def __init__(
        self,
        chief: Crewchief,
        caller: Callable[[Context], Any],
        workspace_rule: Callable[[str | None], str | None],
        models_rule: Callable[[dict[str, str] | None], dict[str, str] | None],
    ):
        self.chief = chief
        self.caller = caller
        self.workspace_rule = workspace_rule
        self.models_rule = models_rule

    async def start_operation(
        self,
        ctx: Context,
        request: Annotated[
            str,
            Field(
                min_length=1,
                max_length=MAX_REQUEST_CHARS,
                description="What to do, in plain words: the task for the crew.",
            ),
        ],
        workspace: Annotated[
            str | None,
            Field(
                max_length=4096,
                description="Absolute path of the directory the operation may read and write"
                " (on the server: under one of its workspace roots). Omit for no file access.",
            ),
        ] = None,
        route: Annotated[
            Literal["auto", "fast", "plan"],
            Field(
                description="`auto`: the simplicity detector decides; `fast`: one model call;"
                " `plan`: a planner splits it into tasks run by cheaper models."
            ),
        ] = "auto",
        approve_plan: Annotated[
            bool,
            Field(
                strict=True,
                description="Stop after planning (status `awaiting_approval`) until review_plan"
                " decides.",
            ),
        ] = False,
        models: Annotated[
            dict[Alias, str] | None,
            Field(
                description='Rebind model aliases for this operation only, e.g. {"delegate":'
                ' "openai:gpt-4.1-mini"} (only models the server allows).'
            ),
        ] = None,
    ) -> Accepted:
        """Start a crewchief operation: plan the request, run its tasks, write the answer.

        Returns at once with the operation's id; it runs in the background. Follow it with
        wait_for_operation (progress as it runs), read it with get_operation."""
        caller = self.caller(ctx)
        with tool_errors():
            handle = await self.chief.start(
                request,
                workspace=self.workspace_rule(workspace),
                route=None if route == "auto" else route,
                approve_plan=approve_plan,
                models=self.models_rule(dict(models) if models else None),
                owner=caller.owner,
                api_key_id=caller.key_id,
            )
        handle.detach()
        return Accepted(**accepted(handle.id))

    async def get_operation(
        self,
        ctx: Context,
        operation_id: OperationId,
        events: Annotated[bool, Field(description="Include its stored events.")] = False,
    ) -> OperationResult:
        """One operation: status, route, plan, tasks (with results and errors), answer, usage
        and cost; with `events`, every stored event too."""
        with tool_errors():
            return await self.chief.get(operation_id, events=events, **self.caller(ctx).scope)

    async def wait_for_operation(
        self,
        ctx: Context,
        operation_id: OperationId,
        timeout_seconds: Annotated[
            float,
            Field(
                ge=0,
                description="How long to wait at most, in seconds (at most"
                f" {_mcp_wait.MAX_WAIT_S:.0f}: longer waits are cut to that).",
            ),
        ] = 60.0,
    ) -> Waited:
        """Wait for an operation to end, reporting progress as it runs (tasks ended of the
        plan's tasks, and what is happening). Returns when it ends, when its plan awaits
        approval, or when `timeout_seconds` pass (then it is still running: call again)."""
        scope = self.caller(ctx).scope
        began = time.monotonic()

        async def report(progress: float, total: float | None, message: str) -> None:
            await ctx.report_progress(progress, total, message)

        with tool_errors():
            current, reason = await _mcp_wait.wait(
                self.chief, operation_id, scope, timeout_seconds, report
            )
        return Waited(
            id=current.id,
            status=current.status,
            reason=reason,  # type: ignore[arg-type]
            waited_seconds=round(time.monotonic() - began, 3),
            next=next_step(current.status),
            operation=current,
        )

    async def review_plan(
        self,
        ctx: Context,
        operation_id: OperationId,
        action: Annotated[
            Literal["accept", "edit", "replan", "reject"],
            Field(
                description="`accept` runs the plan; `edit` runs `tasks` instead; `replan` sends"
                " `feedback` to the planner (the new plan awaits approval again); `reject`"
                " ends the operation."
            ),
        ],
        tasks: Annotated[
            list[PlanTaskEdit] | None,
            Field(description="For `edit`: the new task list (ids are positions 1, 2, ...)."),
        ] = None,
        feedback: Annotated[
            Text, Field(description="For `replan`: what the planner should change.")
        ] = None,
        reason: Annotated[Text, Field(description="For `reject`: why (kept with it).")] = None,
    ) -> Accepted:
        """Decide on a plan that awaits approval (an operation started with approve_plan)."""
        raw: dict[str, Any] = {"action": action}
        if tasks is not None:
            raw["tasks"] = [t.model_dump(exclude_none=True) for t in tasks]
        for name, value in (("feedback", feedback), ("reason", reason)):
            if value is not None:
                raw[name] = value
        try:
            decision = parse_decision(raw)
        except InvalidDecision as exc:  # named as the arguments are: no `edit.` in front
            raise ToolError(str(exc).removeprefix(f"{action}.")) from exc
        with tool_errors():
            handle = await self.chief.review_plan(operation_id, decision, **self.caller(ctx).scope)
        handle.detach()
        return Accepted(**accepted(operation_id, "rejected" if action == "reject" else "running"))

    async def cancel_operation(self, ctx: Context, operation_id: OperationId) -> OperationResult:
        """Cancel an operation: it stops promptly and ends `cancelled` with its unfinished
        tasks. An operation that already ended is returned unchanged."""
        with tool_errors():
            await self.chief.get(operation_id, **self.caller(ctx).scope)
            return await self.chief.cancel(operation_id)

    async def rerun_task(
        self,
        ctx: Context,
        operation_id: OperationId,
        task: Annotated[int, Field(ge=1, le=1000, description="The task's sequence number.")],
        description: Annotated[Text, Field(description="A new description for the task.")] = None,
        instructions: Annotated[Text, Field(description="Extra guidance for this run.")] = None,
    ) -> Rerun:
        """Re-run one task of an operation that ended, and every task that depends on it, then
        write the answer again. The other tasks keep their results."""
        with tool_errors():
            handle = await self.chief.rerun_task(
                operation_id,
                task,
                description=description,
                instructions=instructions,
                **self.caller(ctx).scope,
            )
        handle.detach()
        info = handle.rerun or {}
        return Rerun(
            **accepted(operation_id),
            task=task,
            version=info.get("version", 0),
            dependents=info.get("dependents", []),
        )

    async def search_workspace(
        self,
        ctx: Context,
        workspace: Annotated[
            str, Field(min_length=1, max_length=4096, description="Absolute path to search.")
        ],
        query: Annotated[
            str, Field(min_length=1, max_length=2000, description="Words, a question or names.")
        ],
        k: Annotated[int, Field(ge=1, le=50, description="How many hits.")] = 10,
        mode: Annotated[
            Literal["hybrid", "bm25", "vector"],
            Field(description="`hybrid`: keywords and meaning fused; or one ranking alone."),
        ] = "hybrid",
        glob: Annotated[
            str | None, Field(max_length=1000, description="Only files matching it: `src/**/*.py`.")
        ] = None,
        refresh: Annotated[
            Literal["auto", "now", "never"],
            Field(description="`now`: index changed files first; `never`: search as indexed."),
        ] = "auto",
    ) -> dict[str, Any]:
        """Search a workspace's code by keywords and meaning: the functions, classes and
        document sections that best answer the query, each with why it matched."""
        caller = self.caller(ctx)
        with tool_errors():
            root = self.workspace_rule(workspace) or workspace
            result = await self.chief.search(
                root, query, owner=caller.owner, k=k, mode=mode, glob=glob, refresh=refresh
            )
        return result.as_dict()

    async def list_skills(self) -> Skills:
        """The skills a plan's tasks can follow (name, what it is for, tools it may use)."""
        from crewchief.skills.registry import skill_registry

        registry = skill_registry(self.chief.settings)
        return Skills(
            skills=[
                {
                    "name": m.name,
                    "description": m.description,
                    "model": m.model,
                    "tools": m.tools_label,
                    "requires_context": list(m.requires_context),
                    "source": m.source,
                }
                for m in registry.list()
            ]
        )

    # -- resources -----------------------------------------------------------------------

    async def plan_resource(self, operation_id: str, ctx: Context) -> str:
        """The plan of an operation: its text and tasks (JSON)."""
        current = await self._readable(operation_id, ctx)
        tasks = [
            {
                "id": t.sequence,
                "description": t.description,
                "active_form": t.active_form,
                "skill": t.skill,
                "depends_on": t.depends_on,
                "status": t.status,
            }
            for t in current.tasks
        ]
        body = {"id": current.id, "status": current.status, "plan": current.plan_text}
        return json.dumps({**body, "tasks": tasks}, ensure_ascii=False)

    async def events_resource(self, operation_id: str, ctx: Context) -> str:
        """The stored events of an operation, in order (JSON)."""
        current = await self._readable(operation_id, ctx, events=True)
        events = [e.model_dump(mode="json") for e in current.events or []]
        return json.dumps({"id": current.id, "events": events}, ensure_ascii=False)

    async def _readable(self, operation_id: str, ctx: Context, **kw: Any) -> OperationResult:
        try:
            return await self.chief.get(operation_id, **kw, **self.caller(ctx).scope)
        except OperationNotFound as exc:
            raise ResourceNotFoundError(str(exc)) from None
