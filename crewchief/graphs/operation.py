"""The operation graph (ARCHITECTURE §1).

::

    START → detect_simplicity ─┬─ fast → fast_path ─────────→ END
                               │            └─(error)─┐
                               └─ plan ──→ plan ←─────┘
                                            ▼   ▲ (replan)
                                       review_plan ──(reject)──→ END
                                            ▼ (accept / edit; an interrupt when approve_plan)
                                        dispatch ─Send→ execute_task (×N) ─┐
                                            ▲──────────────────────────────┘
                                            ▼ (all settled)
                                        synthesize → END
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from langgraph.errors import GraphBubbleUp
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime

from crewchief.config import Settings
from crewchief.graphs.routing import after_detect, after_fast_path, after_review, next_tasks
from crewchief.nodes.detect_simplicity import detect_simplicity
from crewchief.nodes.dispatch import dispatch
from crewchief.nodes.execute_task import execute_task
from crewchief.nodes.fast_path import fast_path
from crewchief.nodes.plan import plan
from crewchief.nodes.review_plan import review_plan
from crewchief.nodes.synthesize import synthesize
from crewchief.results import TERMINAL_STATUSES
from crewchief.runtime.deps import NodeDeps, RunContext, resolve_deps
from crewchief.state import OperationContext, OperationInput, OperationOutput, OperationState

NodeFn = Callable[[Any, NodeDeps], Awaitable[dict[str, Any]]]


def _bind(fn: NodeFn, settings: Settings | None) -> Callable:
    """Adapt ``fn(state, deps)`` to LangGraph's ``(state, runtime)`` node signature.

    An exception escaping a node ends the operation as ``failed`` (recorded with
    its event) before it propagates, so every way of running the graph (an
    executor, Studio, a parent graph) leaves the operation in a final state.
    """

    async def node(state: Any, runtime: Runtime[OperationContext]) -> dict[str, Any]:
        context = runtime.context
        if isinstance(context, RunContext) and context.deps is not None:
            deps = context.deps
        else:
            deps = await resolve_deps(context, settings)
        op = state.get("operation_id") if isinstance(state, dict) else None
        try:
            update = await fn(state, deps)
        except (asyncio.CancelledError, GraphBubbleUp):
            raise
        except Exception as exc:
            if op:
                name = fn.__name__
                message = f"{name}: {exc}" if str(exc) else f"{name}: {type(exc).__name__}"
                await deps.recorder.finish(op, "failed", error=message)
                deps.services.release(op)
            raise
        if op and update.get("status") in ("completed", "failed", "rejected"):
            deps.services.release(op)  # the operation ended: drop its task slots
        return update

    # Not functools.wraps: LangGraph reads the signature to inject ``runtime``.
    node.__name__ = node.__qualname__ = fn.__name__
    node.__doc__ = fn.__doc__
    return node


def build_operation_graph(settings: Settings | None = None) -> StateGraph:
    """Build the uncompiled operation graph.

    Compile it with the checkpointer of your choice, or add it as a node of a
    larger graph. Runs that bring no :class:`OperationContext` with services
    use process-wide services built from ``settings`` (or from the
    environment when ``settings`` is None).

    Args:
        settings: Configuration for runs that bring none; read lazily.
    """
    graph = StateGraph(
        OperationState,
        context_schema=OperationContext,
        input_schema=OperationInput,
        output_schema=OperationOutput,
    )
    graph.add_node("detect_simplicity", _bind(detect_simplicity, settings))
    graph.add_node("fast_path", _bind(fast_path, settings))
    graph.add_node("plan", _bind(plan, settings))
    graph.add_node("review_plan", _bind(review_plan, settings))
    graph.add_node("dispatch", _bind(dispatch, settings))
    graph.add_node("execute_task", _bind(execute_task, settings))
    graph.add_node("synthesize", _bind(synthesize, settings))
    graph.add_edge(START, "detect_simplicity")
    graph.add_conditional_edges("detect_simplicity", after_detect, ["fast_path", "plan"])
    graph.add_conditional_edges("fast_path", after_fast_path, ["plan", END])
    graph.add_edge("plan", "review_plan")
    graph.add_conditional_edges("review_plan", after_review, ["dispatch", "plan", END])
    graph.add_conditional_edges("dispatch", next_tasks, ["execute_task", "synthesize"])
    graph.add_edge("execute_task", "dispatch")
    graph.add_edge("synthesize", END)
    return graph


class StepGate:
    """Lets a run be stopped where nothing is lost: once the tasks of its current step ended.

    A worker that is told to stop (a deploy) calls :meth:`close`; the run then stops
    as soon as no task of it is running (their results are saved with the step), with
    :class:`StepBoundary`. ``idle`` says whether that is already the case.
    """

    def __init__(self) -> None:
        self.running: set[str] = set()
        self.closed = False

    @property
    def idle(self) -> bool:
        return not self.running

    def close(self) -> None:
        self.closed = True


class StepBoundary(Exception):  # noqa: N818 - a signal, not an error
    """The run stopped at a step boundary because its :class:`StepGate` was closed."""


async def _invoke(
    graph: Any,
    payload: Any,
    config: dict[str, Any],
    context: Any,
    gate: StepGate | None,
    **kwargs: Any,
) -> dict[str, Any]:
    """``graph.ainvoke``; with a gate, a stream that stops at the gate's step boundary."""
    if gate is None:
        return await graph.ainvoke(payload, config, context=context, **kwargs)
    out: dict[str, Any] = {}
    stream = graph.astream(
        payload, config, context=context, stream_mode=["tasks", "values"], **kwargs
    )
    async with contextlib.aclosing(stream):
        async for mode, chunk in stream:
            if mode == "values":
                out = chunk
            elif "input" in chunk:  # a task started
                gate.running.add(chunk["id"])
            else:  # a task ended: its writes are saved with the step
                gate.running.discard(chunk["id"])
            if gate.closed and gate.idle:
                raise StepBoundary
    return out


async def invoke_operation(
    graph: Any,
    payload: OperationInput | Any,
    config: dict[str, Any],
    context: Any,
    gate: StepGate | None = None,
) -> None:
    """Run (or continue) one operation on a compiled operation graph, to its end or its interrupt.

    A new run whose input says it takes the fast path is checkpointed once, when it
    ends (``durability="exit"``): after a crash it is simply run again, which costs
    the same single model call. Should it fall back to planning it stops before the
    plan node (saving that checkpoint) and goes on with a checkpoint after every step.
    Everything else (planned runs, resumes, plan decisions, re-runs) checkpoints
    after every step.

    With a ``gate``, closing it stops the run after the step it is in (see
    :class:`StepGate`).
    """
    decision = payload.get("decision") if isinstance(payload, dict) else None
    if not decision or decision.get("route") != "fast":
        await _invoke(graph, payload, config, context, gate)
        return
    out = await _invoke(
        graph, payload, config, context, gate, durability="exit", interrupt_before=["plan"]
    )
    if out.get("status") in TERMINAL_STATUSES:
        return
    snapshot = await graph.aget_state(config)
    if snapshot.next == ("plan",) and not snapshot.interrupts:
        await _invoke(graph, None, config, context, gate)
