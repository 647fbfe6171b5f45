"""The executor's tool loop: model → tool calls → results → model, bounded in steps and tokens."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage

from crewchief import prompts
from crewchief.models.registry import ModelReply
from crewchief.models.types import Usage
from crewchief.nodes._window import fit_to_window
from crewchief.nodes.task_context import Edit, NamedFile, strip_code_blocks, whole_file_edits
from crewchief.runtime.deps import NodeDeps
from crewchief.skills.registry import ActiveSkill, SkillError
from crewchief.tools.diff import run_tool_with_diff
from crewchief.tools.files import (
    TOOL_NAMES,
    ToolOutcome,
    summarize_args,
    tool_spec,
    tool_specs,
)
from crewchief.tools.mcp import McpTool, allows, is_mcp_name
from crewchief.tools.workspace import Workspace

log = logging.getLogger(__name__)

_OUTPUT_IN_EVENT = 300
ACTIVATE_SKILL = "activate_skill"


@dataclass(slots=True)
class ToolPolicy:
    """Which model works on the task and which tools it may use.

    A task with a skill starts restricted to the skill's ``allowed-tools`` on
    its preferred model. A task without one may call ``activate_skill`` once
    (when ``activate`` is set and ``offered_skills`` is not empty); from then
    on it is restricted the same way.

    ``mcp`` holds the MCP tools listed for the task (by ``mcp:NAME/tool``);
    ``allowed`` names the file tools and MCP tools it may call. File tools are
    offered only when the task has a workspace (``files``).
    """

    alias: str = "delegate"
    allowed: frozenset[str] = frozenset(TOOL_NAMES)
    skill: str | None = None
    offered_skills: dict[str, str] = field(default_factory=dict)  # name → description
    activate: Callable[[str], ActiveSkill] | None = None
    mcp: dict[str, McpTool] = field(default_factory=dict)
    files: bool = True

    def apply(self, active: ActiveSkill) -> None:
        self.alias, self.skill = active.model_alias, active.name
        self.allowed = allowed_tools(active.allowed_tools, self.mcp)
        self.offered_skills, self.activate = {}, None

    @property
    def can_activate(self) -> bool:
        return self.activate is not None and bool(self.offered_skills)

    def file_tools(self) -> list[str]:
        return [n for n in TOOL_NAMES if n in self.allowed] if self.files else []

    def mcp_tools(self) -> list[McpTool]:
        return [tool for name, tool in self.mcp.items() if name in self.allowed]

    def specs(self) -> list[dict[str, Any]]:
        specs = tool_specs(self.file_tools()) + [t.spec() for t in self.mcp_tools()]
        if self.can_activate:
            listing = "; ".join(f"{n}: {d}" for n, d in sorted(self.offered_skills.items()))
            names = {"type": "string", "enum": sorted(self.offered_skills)}
            description = f"Follow a skill (a proven method) for this task. Skills: {listing}"
            specs.append(tool_spec(ACTIVATE_SKILL, description, {"name": names}, ["name"]))
        return specs

    def tool_list(self) -> str:
        names = self.file_tools() + [t.name for t in self.mcp_tools()]
        if self.can_activate:
            names.append(ACTIVATE_SKILL)
        return ", ".join(names) or "none"


def allowed_tools(entries: Iterable[str], mcp: dict[str, McpTool]) -> frozenset[str]:
    """The file tools ``entries`` names, and the MCP tools of ``mcp`` its ``mcp:`` entries
    (``mcp:NAME/tool`` or ``mcp:NAME/*``) match."""
    entries = list(entries)
    patterns = [e for e in entries if is_mcp_name(e)]
    return frozenset(
        [e for e in entries if e in TOOL_NAMES] + [n for n in mcp if allows(patterns, n)]
    )


@dataclass(slots=True)
class LoopResult:
    text: str
    model: str
    usage: Usage = field(default_factory=Usage)
    tool_calls: int = 0
    changed: list[str] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return self.usage.input + self.usage.output


async def run_tool_loop(
    deps: NodeDeps,
    messages: list[BaseMessage],
    workspace: Workspace | None,
    *,
    operation_id: str,
    task: int,
    max_steps: int,
    max_tokens: int,
    files: list[NamedFile],
    policy: ToolPolicy,
    notes: list[str] | None = None,
) -> LoopResult:
    """Let the model use its allowed tools until it answers without a tool call.

    File tools need a ``workspace``; MCP tools (``policy.mcp``) do not. Each tool
    call is recorded as a ``task.tool_called`` event; a call to a tool the
    policy does not allow is refused, recorded with ``refused: true`` and
    logged. After ``max_steps`` model calls that still ask for tools, or once
    ``max_tokens`` are spent, one last call without tools asks for the report.
    Files the final reply writes out in full (see :func:`whole_file_edits`) are
    then written like ``write_file`` calls, if the policy allows writing.
    ``notes`` (e.g. MCP servers that could not be reached) are recorded first.
    """
    result = LoopResult(text="", model="")
    run = _Runner(deps, workspace, operation_id, task, result, policy)
    if notes:
        await run.record(None, {}, None, notes)
    files = files if "write_file" in policy.allowed and workspace is not None else []
    if files:
        # Edit first: the files are known, so ask for their new content without tools.
        # Small models are far better at rewriting a file they see than at tool calls.
        reply = await run.model(messages, tools=False)
        edits, notes = whole_file_edits(reply.text, files)
        if edits:
            await _finish(run, reply.text, edits, notes)
            return result
        if notes:
            await run.record(None, {}, None, notes)
    for _ in range(max_steps):
        if result.tokens >= max_tokens:
            await run.record(None, {}, None, [f"token budget reached: {result.tokens:,}"])
            messages.append(
                HumanMessage(
                    prompts.TASK_OUT_OF_TOKENS.format(used=result.tokens, limit=max_tokens)
                )
            )
            break
        reply = await run.model(messages, tools=True)
        run.accept_canonical(reply)
        await run.refuse(reply.refused)
        calls = reply.message.tool_calls
        if not calls:
            other = [n for n in reply.repairs if not n.startswith("refused ")]
            if other:
                await run.record(None, {}, None, other)
            if reply.repairs and not reply.text.strip():
                # Every call was refused or dropped: say so and let the model try again.
                messages.append(reply.message)
                reasons = "; ".join(reply.repairs)
                text = prompts.TASK_CALLS_REFUSED.format(reasons=reasons, tools=policy.tool_list())
                messages.append(HumanMessage(text))
                continue
            await _finish(run, reply.text, *_edits(reply.text, files, policy))
            return result
        messages.append(reply.message)
        for i, call in enumerate(calls):
            outcome = await run.call(call["name"], call["args"], reply.repairs if i == 0 else [])
            body = outcome.output if outcome.ok else f"error: {outcome.output}"
            messages.append(ToolMessage(body, tool_call_id=call["id"], name=call["name"]))
    else:
        messages.append(HumanMessage(prompts.TASK_OUT_OF_STEPS))
    reply = await run.model(messages, tools=False)
    await _finish(run, reply.text, *_edits(reply.text, files, policy))
    return result


@dataclass(slots=True)
class _Runner:
    deps: NodeDeps
    workspace: Workspace | None
    op: str
    task: int
    result: LoopResult
    policy: ToolPolicy
    step: int = 0

    async def model(self, messages: list[BaseMessage], *, tools: bool) -> ModelReply:
        await self._fit(messages)
        reply = await self.deps.call_model(
            self.policy.alias,
            messages,
            effort="medium",
            node="execute_task",
            operation_id=self.op,
            task=self.task,
            tools=self.policy.specs() if tools else None,
        )
        self.result.usage = self.result.usage + reply.usage
        self.result.model = reply.model
        return reply

    async def _fit(self, messages: list[BaseMessage]) -> None:
        """Keep the loop's conversation within its model's window; a ``task.tool_called``
        note says what was trimmed."""
        note = await fit_to_window(
            self.deps,
            messages,
            self.policy.alias,
            node="execute_task",
            operation_id=self.op,
            task=self.task,
        )
        if note is not None:
            await self.record(None, {}, None, [note])

    def accept_canonical(self, reply: ModelReply) -> None:
        """Calls naming an offered MCP tool as ``mcp:NAME/tool`` (not its wire name) were
        refused by the tool-call repair; they are taken as calls of that tool."""
        kept = []
        for name, args in reply.refused:
            tool = self.deps.mcp.resolve(name) if is_mcp_name(name) else None
            if tool is None or tool.name not in self.policy.allowed:
                kept.append((name, args))
                continue
            call_id = f"call_{uuid.uuid4().hex[:12]}"
            reply.message.tool_calls.append(
                {"name": tool.wire, "args": args, "id": call_id, "type": "tool_call"}
            )
            reply.repairs = [
                n for n in reply.repairs if not n.startswith(f"refused a call to {name!r}")
            ]
        reply.refused = kept

    async def call(self, name: str, args: dict[str, Any], repairs: list[str]) -> ToolOutcome:
        diff = None
        mcp = self.deps.mcp.resolve(name) if self.policy.mcp else None
        if name == ACTIVATE_SKILL:
            outcome = self._activate(args)
            if outcome.ok:
                await self.deps.recorder.skill_activated(
                    self.op, self.task, skill_payload(self.policy, by="executor")
                )
        elif mcp is not None and mcp.name in self.policy.allowed:
            return await self._call_mcp(mcp, args, repairs)
        elif name not in self.policy.file_tools() or self.workspace is None:
            # The model was not offered this tool; a repaired text call can still name it.
            await self.refuse([(name, args)])
            return ToolOutcome(False, self._refusal(name))
        else:
            # The file's previous content is read before the write, off the event loop too.
            outcome, diff = await asyncio.to_thread(run_tool_with_diff, self.workspace, name, args)
            if outcome.ok and name == "write_file":
                self.result.changed.append(str(args.get("path")))
        self.result.tool_calls += 1
        await self.record(name, args, outcome, repairs, diff=diff)
        return outcome

    async def _call_mcp(
        self, tool: McpTool, args: dict[str, Any], repairs: list[str]
    ) -> ToolOutcome:
        done = await self.deps.mcp.call(tool, args if isinstance(args, dict) else {})
        outcome = ToolOutcome(done.ok, done.output)
        self.result.tool_calls += 1
        extra = {
            "server": done.server,
            "duration_ms": done.duration_ms,
            "truncated": done.truncated,
            "restarted": done.restarted,
            "error": done.error,
        }
        await self.record(tool.name, args, outcome, repairs, extra=extra)
        return outcome

    def _activate(self, args: dict[str, Any]) -> ToolOutcome:
        name = args.get("name")
        if not self.policy.can_activate or name not in self.policy.offered_skills:
            offered = ", ".join(sorted(self.policy.offered_skills)) or "none"
            return ToolOutcome(
                False, f"no skill named {name!r} can be activated; offered: {offered}"
            )
        try:
            active = self.policy.activate(name)
        except SkillError as exc:  # e.g. the skill needs context this task lacks
            return ToolOutcome(False, str(exc))
        self.policy.apply(active)
        text = prompts.TASK_SKILL_ACTIVATED.format(
            name=active.name, tools=self.policy.tool_list(), instructions=active.instructions
        )
        return ToolOutcome(True, text)

    def _refusal(self, name: str) -> str:
        why = f"skill {self.policy.skill!r} allows" if self.policy.skill else "this task allows"
        return f"{name} is not allowed: {why} only {self.policy.tool_list()}"

    async def refuse(self, calls: list[tuple[str, dict[str, Any]]]) -> None:
        for wire, args in calls:
            name = self.deps.mcp.canonical(wire)  # events name MCP tools mcp:NAME/tool
            log.warning(
                "operation %s task %s: refused a call to %r (%s)",
                self.op,
                self.task,
                name,
                self._refusal(name),
            )
            await self.record(name, args, ToolOutcome(False, self._refusal(name)), [], refused=True)

    async def record(
        self,
        name: str | None,
        args: dict[str, Any],
        outcome: ToolOutcome | None,
        repairs: list[str],
        *,
        refused: bool = False,
        diff: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        """One ``task.tool_called`` event; a successful ``write_file``'s has the ``diff``, an
        MCP call's the server, its duration and whether its output was truncated."""
        self.step += 1
        payload = {
            "tool": name,
            "args": summarize_args(args) if isinstance(args, dict) and args else "",
            "ok": outcome.ok if outcome else False,
            "output": outcome.output[:_OUTPUT_IN_EVENT] if outcome else "",
            "repairs": repairs,
            "refused": refused,
            "skill": self.policy.skill,
        }
        if diff is not None:
            payload["diff"] = diff
        payload.update(extra or {})
        await self.deps.recorder.tool_called(self.op, self.task, self.step, payload)


def skill_payload(policy: ToolPolicy, *, by: str) -> dict[str, Any]:
    return {
        "skill": policy.skill,
        "by": by,
        "model_alias": policy.alias,
        "tools": [n for n in TOOL_NAMES if n in policy.allowed]
        + sorted(n for n in policy.allowed if is_mcp_name(n)),
    }


def _edits(text: str, files: list[NamedFile], policy: ToolPolicy) -> tuple[list[Edit], list[str]]:
    # A skill activated on the way may have taken the right to write away.
    if not files or "write_file" not in policy.allowed:
        return [], []
    return whole_file_edits(text, files)


async def _finish(run: _Runner, text: str, edits: list[Edit], notes: list[str]) -> None:
    """Apply the whole-file edits of the final reply; keep the prose as the report."""
    for edit in edits:
        note = f"applied the new {edit.path} written out in the reply"
        await run.call("write_file", {"path": edit.path, "content": edit.content}, [note])
    if notes:
        await run.record(None, {}, None, notes)
    report = strip_code_blocks(text) if edits else text
    if run.result.changed:
        changed = ", ".join(dict.fromkeys(run.result.changed))
        report = f"{report}\n\nChanged: {changed}".strip()
    run.result.text = report
