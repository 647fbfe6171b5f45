"""A task's tool loop that outgrows its model's window keeps going on a summary of its
middle, without ever separating a tool call from its result."""

from __future__ import annotations

from pathlib import Path

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from crewchief import FakeChatModel, FakeScript
from tests.conftest import make_settings, plan_reply, run_planned


def _no_orphans(messages: list) -> None:
    pending: set[str] = set()
    for m in messages:
        if isinstance(m, ToolMessage):
            assert m.tool_call_id in pending, f"orphaned tool result {m.tool_call_id}"
            pending.discard(m.tool_call_id)
            continue
        assert not pending, f"calls without results: {pending}"
        pending = {c["id"] for c in m.tool_calls} if isinstance(m, AIMessage) else set()


async def test_a_long_tool_loop_is_summarized_and_finishes(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    reads = []
    for n in range(4):
        lines = (f"setting_{n}_{i} = value {i} for the parser\n" for i in range(120))
        (root / f"part{n}.txt").write_text("".join(lines))
        reads.append({"tool_calls": [{"name": "read_file", "args": {"path": f"part{n}.txt"}}]})
    rules = [
        {"node": "plan", "reply": plan_reply("Summarize the settings in part0-3.txt")},
        {
            "node": "execute_task",
            "alias": "fast",
            "reply": "part0-2 were read; they list settings.",
        },
        {"node": "execute_task", "replies": [*reads, "480 settings, all for the parser."]},
        {"node": "synthesize", "reply": "Done."},
    ]
    model = FakeChatModel(script=FakeScript(rules=rules, fallback="error"))
    settings = make_settings(
        tmp_path / "home",
        max_output_tokens=300,
        context_keep_last=2,
        gateway={"context_tokens": 5000},  # the window of a model whose window is not known
    )
    op = await run_planned(settings, model, "What is in part0-3.txt?", root)

    assert op.status == "completed", op.error
    (task,) = op.tasks
    assert task.result == "480 settings, all for the parser."
    calls = [c for c in model.calls if c["node"] == "execute_task"]
    # The fast alias (fake:default here) summarized the middle; the loop went on with it.
    after = calls[-1]["messages"]
    assert any(isinstance(m, HumanMessage) and m.content.startswith("[Summary of ") for m in after)
    for call in calls:
        _no_orphans(call["messages"])
    notes = [
        note
        for e in op.events
        if e.type == "task.tool_called"
        for note in e.payload["repairs"]
        if note.startswith("context trimmed")
    ]
    assert notes and "summarized" in notes[0] and "5,000 tokens" in notes[0]
