"""Live progress of an operation in the terminal: Rich on a TTY, plain lines otherwise."""

from __future__ import annotations

import time
from typing import Any

from rich.console import Console, Group
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from crewchief.events import Event, EventType

_MARKS = {
    "pending": ("·", "dim"),
    "completed": ("✓", "green"),
    "failed": ("✗", "red"),
    "cancelled": ("⊘", "yellow"),
}


def meta_line(p: dict[str, Any]) -> str:
    """One planner meta-tool call: what was asked and who answered."""
    if p.get("refused"):
        return f"planner: {p['tool']} refused (not a planner tool)"
    if not p.get("ok"):
        return f"planner: {p['tool']} {p['args']} → error: {p['answer']}"
    u = p.get("usage") or {}
    who = f"answered by {p['model']}" if p.get("model") else "answered"
    return (
        f"planner: {p['tool']} {p['args']} → {who} "
        f"({u.get('input', 0)}→{u.get('output', 0)} tokens)"
    )


def tool_line(p: dict[str, Any]) -> str | None:
    """A task's refused tool call or activated skill (ordinary calls stay quiet)."""
    if p.get("refused"):
        return f"  ⊘ {p['sequence']}. refused {p['tool']}: {p['output']}"
    return None


def route_line(payload: dict[str, Any]) -> str:
    """The detector's decision: route (and whether forced), tier, score and reasons."""
    forced = " (forced)" if payload.get("forced") else ""
    tier = f" · tier {payload['tier']}" if payload.get("tier") else ""
    reasons = "; ".join(payload.get("reasons") or [])
    return (
        f"route: {payload['route']}{forced}{tier} · simplicity {payload['score']:.2f} · {reasons}"
    )


class ProgressView:
    """Folds events into a renderable: route, plan, one line per task, streamed answer."""

    def __init__(self) -> None:
        self.route: str | None = None
        self.notes: list[Text] = []
        self.tasks: dict[int, dict[str, Any]] = {}
        self.answer_stream = ""
        self.started = time.perf_counter()
        self.ended: Event | None = None

    def handle(self, event: Event) -> None:
        p = event.payload
        if event.type == EventType.ROUTE_DECIDED:
            self.route = route_line(p)
        elif event.type == EventType.FAST_PATH_FAILED:
            self.notes.append(
                Text(f"fast path failed ({p['error']}); planning instead", style="yellow")
            )
        elif event.type == EventType.PLAN_INVALID:
            self.notes.append(
                Text(f"plan attempt {p['attempt']} unusable: {p['error']}", style="yellow")
            )
        elif event.type == EventType.PLAN_TOOL_CALLED:
            self.notes.append(Text(meta_line(p), style="dim"))
        elif event.type == EventType.PLAN_GENERATED:
            self.notes.append(Text(f"plan: {len(p['tasks'])} tasks", style="bold"))
        elif event.type == EventType.TASK_SKILL_ACTIVATED:
            self.tasks.setdefault(p["sequence"], {"description": f"task {p['sequence']}"})[
                "skill"
            ] = p["skill"]
        elif event.type == EventType.TASK_TOOL_CALLED and p.get("refused"):
            self.notes.append(Text(tool_line(p) or "", style="yellow"))
        elif event.type == EventType.TASK_CREATED:
            self.tasks[p["sequence"]] = {**p, "status": "pending"}
        elif event.type == EventType.TASK_STARTED:
            self.tasks.setdefault(p["sequence"], {"description": p["active_form"]}).update(
                status="in_progress", t0=time.perf_counter()
            )
        elif event.type in (EventType.TASK_COMPLETED, EventType.TASK_FAILED):
            task = self.tasks.setdefault(p["sequence"], {"description": f"task {p['sequence']}"})
            task.update(status="completed" if event.type == EventType.TASK_COMPLETED else "failed")
            task.update(
                error=p.get("error"),
                usage=p.get("usage"),
                elapsed=time.perf_counter() - task.get("t0", time.perf_counter()),
            )
        elif event.type == EventType.MODEL_DELTA and p.get("node") in ("fast_path", "synthesize"):
            self.answer_stream += p["text"]
        elif event.terminal:
            self.ended = event

    def _task_row(self, seq: int, task: dict[str, Any]) -> tuple[Any, Text]:
        status = task.get("status", "pending")
        if status == "in_progress":
            return Spinner("dots", style="cyan"), Text(
                f"{seq}. {task.get('active_form') or task['description']}", style="cyan"
            )
        mark, style = _MARKS.get(status, ("?", ""))
        line = Text(f"{seq}. {task['description']}", style=style if status != "completed" else "")
        if task.get("skill"):
            line.append(f"  [{task['skill']}]", style="magenta")
        if status == "completed" and task.get("usage"):
            u = task["usage"]
            line.append(
                f"  {task.get('elapsed', 0):.1f}s · {u['input']}→{u['output']} tokens", style="dim"
            )
        if task.get("error"):
            line.append(f"  {task['error']}", style="red")
        return Text(mark, style=style), line

    def __rich__(self) -> Group:
        parts: list[Any] = []
        if self.route:
            parts.append(Text(self.route, style="bold"))
        parts.extend(self.notes)
        if self.tasks:
            table = Table.grid(padding=(0, 1))
            for seq in sorted(self.tasks):
                table.add_row(*self._task_row(seq, self.tasks[seq]))
            parts.append(table)
        if self.answer_stream and self.ended is None:
            tail = "\n".join(self.answer_stream.splitlines()[-6:])
            parts.append(Text(tail, style="dim"))
        return Group(*parts)


class PlainProgress:
    """One line per event, for logs and pipes."""

    def __init__(self, console: Console):
        self.console = console

    def handle(self, event: Event) -> None:
        p = event.payload
        line = {
            EventType.ROUTE_DECIDED: lambda: route_line(p),
            EventType.FAST_PATH_FAILED: lambda: (
                f"fast path failed ({p['error']}); planning instead"
            ),
            EventType.PLAN_INVALID: lambda: f"plan attempt {p['attempt']} unusable: {p['error']}",
            EventType.PLAN_TOOL_CALLED: lambda: meta_line(p),
            EventType.PLAN_GENERATED: lambda: f"plan: {len(p['tasks'])} tasks",
            EventType.TASK_CREATED: lambda: f"  · {p['sequence']}. {p['description']}",
            EventType.TASK_SKILL_ACTIVATED: lambda: (
                f"  ⚙ {p['sequence']}. skill {p['skill']} ({p['model_alias']}; "
                f"{', '.join(p['tools']) or 'no tools'})"
            ),
            EventType.TASK_TOOL_CALLED: lambda: tool_line(p),
            EventType.TASK_STARTED: lambda: f"  … {p['sequence']}. {p['active_form']}",
            EventType.TASK_COMPLETED: lambda: (
                f"  ✓ {p['sequence']}. done ({p['usage']['input']}→{p['usage']['output']} tokens)"
            ),
            EventType.TASK_FAILED: lambda: f"  ✗ {p['sequence']}. {p['error']}",
        }.get(event.type)
        text = line() if line is not None else None
        if text is not None:
            self.console.print(text, highlight=False, markup=False)
