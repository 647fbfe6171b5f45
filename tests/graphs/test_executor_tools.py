"""Task executors with a real workspace: edits written in replies, the tool loop, its limits."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from crewchief import Crewchief, FakeChatModel, FakeScript
from crewchief.config import Settings
from crewchief.tools.files import TOOL_NAMES
from tests.conftest import make_settings, plan_reply

UTILS = (
    "import os\n\n\ndef join(a, b):\n    return os.path.join(a, b)\n\n\n"
    "def base(p):\n    return os.path.basename(p)\n"
)
UTILS_DOC = (
    "import os\n\n\ndef join(a, b):\n"
    '    """Join two path parts."""\n'
    "    return os.path.join(a, b)\n\n\ndef base(p):\n"
    '    """The last part of a path."""\n'
    "    return os.path.basename(p)\n"
)
# A task without a skill is offered every file tool and the choice of a skill.
OFFERED = [*TOOL_NAMES, "activate_skill"]


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    (root / "utils.py").write_text(UTILS, encoding="utf-8")
    return root


def model_for(task: str, *executor_rules: dict[str, Any]) -> FakeChatModel:
    rules = [{"node": "plan", "reply": plan_reply(task)}]
    rules += [{"node": "execute_task", **rule} for rule in executor_rules]
    rules.append({"node": "synthesize", "reply": "Summary."})
    return FakeChatModel(script=FakeScript(rules=rules, fallback="error"))


async def run_task(
    settings: Settings, model: FakeChatModel, workspace: Path, request: str
) -> tuple[Any, list[dict[str, Any]]]:
    """Run a one-task plan; return the task and the payloads of its task.tool_called events."""
    async with Crewchief(settings, models={"orchestrator": model, "delegate": model}) as cc:
        result = await cc.run(request, workspace=workspace, route="plan")
        stored = await cc.get(result.id, events=True)
    assert result.status == "completed", result.error
    assert result.answer == "Summary."
    (task,) = result.tasks
    return task, [e.payload for e in stored.events if e.type == "task.tool_called"]


def names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def executor_calls(model: FakeChatModel) -> list[dict[str, Any]]:
    return [c for c in model.calls if c["node"] == "execute_task"]


def text_call(name: str, arguments: dict[str, Any]) -> str:
    return "```json\n" + json.dumps({"name": name, "arguments": arguments}) + "\n```"


async def test_edit_written_in_the_reply_is_applied_without_tools(
    settings: Settings, workspace: Path
) -> None:
    reply = f"utils.py\n```python\n{UTILS_DOC}```\nAdded docstrings."
    model = model_for("Add a docstring to every function in utils.py", {"reply": reply})
    task, calls = await run_task(settings, model, workspace, "Document the helpers")
    assert (workspace / "utils.py").read_text(encoding="utf-8") == UTILS_DOC
    assert task.status == "completed"
    assert task.result == "Added docstrings.\n\nChanged: utils.py"
    assert task.result.endswith("Changed: utils.py")
    size = len(UTILS_DOC.encode())
    assert calls == [
        {
            "sequence": 1,
            "step": 1,
            "tool": "write_file",
            "args": json.dumps({"path": "utils.py", "content": f"<{len(UTILS_DOC)} chars>"}),
            "ok": True,
            "output": f"wrote utils.py ({size:,} bytes, 11 lines)",
            "repairs": ["applied the new utils.py written out in the reply"],
            "refused": False,
            "skill": None,
            "diff": "--- a/utils.py\n+++ b/utils.py\n@@ -2,8 +2,10 @@\n \n \n def join(a, b):\n"
            '+    """Join two path parts."""\n     return os.path.join(a, b)\n \n \n'
            ' def base(p):\n+    """The last part of a path."""\n     return os.path.basename(p)\n',
        }
    ]
    (call,) = executor_calls(model)
    assert call["tools"] == [], "edit first: the named file is shown, no tools offered"
    assert UTILS in call["prompt"], "the executor sees the current content of utils.py"


async def test_tool_call_written_as_text_is_repaired_and_run(
    settings: Settings, workspace: Path
) -> None:
    todo = "- Write tests\n- Fix the build\n- Ship it\n"
    call = text_call("write_file", {"path": "notes/todo.md", "content": todo})
    model = model_for(
        "Create notes/todo.md listing three next steps",
        {"replies": [f"I will write it.\n{call}", "Wrote the list."]},
    )
    task, calls = await run_task(settings, model, workspace, "Plan the next steps")
    assert (workspace / "notes" / "todo.md").read_text(encoding="utf-8") == todo
    assert (workspace / "utils.py").read_text(encoding="utf-8") == UTILS
    assert task.status == "completed"
    assert task.result == "Wrote the list.\n\nChanged: notes/todo.md"
    assert calls == [
        {
            "sequence": 1,
            "step": 1,
            "tool": "write_file",
            "args": json.dumps({"path": "notes/todo.md", "content": todo}),
            "ok": True,
            "output": f"wrote notes/todo.md ({len(todo)} bytes, 3 lines)",
            "repairs": ["parsed 1 tool call(s) written as text"],
            "refused": False,
            "skill": None,
            # A new file: every line added.
            "diff": "--- a/notes/todo.md\n+++ b/notes/todo.md\n@@ -0,0 +1,3 @@\n"
            "+- Write tests\n+- Fix the build\n+- Ship it\n",
        }
    ]
    assert [c["tools"] for c in executor_calls(model)] == [OFFERED, OFFERED]


async def test_a_file_written_by_a_tool_call_shows_its_diff(
    settings: Settings, workspace: Path
) -> None:
    new = UTILS.replace("os.path.join(a, b)", "f'{a}/{b}'").replace("import os\n\n\n", "")
    (workspace / "data.bin").write_bytes(b"\x00\x01old")
    calls = [
        {"name": "write_file", "args": {"path": "utils.py", "content": new}},
        {"name": "write_file", "args": {"path": "data.bin", "content": "text now\n"}},
    ]
    model = model_for("Join paths with a slash", {"replies": [{"tool_calls": calls}, "Done."]})
    task, events = await run_task(settings, model, workspace, "Simplify join")
    assert (workspace / "utils.py").read_text(encoding="utf-8") == new
    utils, data = events
    assert utils["diff"].splitlines() == [
        "--- a/utils.py",
        "+++ b/utils.py",
        "@@ -1,8 +1,5 @@",
        "-import os",
        "-",
        "-",
        " def join(a, b):",
        "-    return os.path.join(a, b)",
        "+    return f'{a}/{b}'",
        " ",
        " ",
        " def base(p):",
    ]
    assert data["ok"] and data["diff"] == (
        "--- a/data.bin\n+++ b/data.bin\n\\ previous content not text\n"
    )


async def test_call_to_a_tool_that_was_not_offered_is_refused(
    settings: Settings, workspace: Path
) -> None:
    model = model_for(
        "Clean up the workspace",
        {"replies": [{"tool_calls": [{"name": "delete_everything"}]}, "Nothing deleted."]},
    )
    task, calls = await run_task(settings, model, workspace, "Tidy up")
    assert names(workspace) == ["utils.py"]
    assert (workspace / "utils.py").read_text(encoding="utf-8") == UTILS
    assert task.status == "completed"
    offered = ", ".join(OFFERED)
    assert calls == [
        {
            "sequence": 1,
            "step": 1,
            "tool": "delete_everything",
            "args": "",
            "ok": False,
            "output": f"delete_everything is not allowed: this task allows only {offered}",
            "repairs": [],
            "refused": True,
            "skill": None,
        }
    ]


async def test_write_outside_the_workspace_is_refused(
    settings: Settings, workspace: Path, tmp_path: Path
) -> None:
    escape = {"name": "write_file", "args": {"path": "../outside.txt", "content": "pwned"}}
    model = model_for(
        "Save a note next to the project",
        {"replies": [{"tool_calls": [escape]}, "Could not write the note."]},
    )
    task, calls = await run_task(settings, model, workspace, "Leave a note")
    assert not (tmp_path / "outside.txt").exists()
    assert names(tmp_path) == ["home", "ws"]
    assert task.status == "completed"
    assert task.result == "Could not write the note."
    assert calls == [
        {
            "sequence": 1,
            "step": 1,
            "tool": "write_file",
            "args": json.dumps(escape["args"]),
            "ok": False,
            "output": "../outside.txt is outside the workspace",
            "repairs": [],
            "refused": False,
            "skill": None,
        }
    ]
    second = executor_calls(model)[1]["messages"][-1]
    assert second.content == "error: ../outside.txt is outside the workspace"


async def test_read_only_task_never_takes_its_reply_as_a_new_file(
    settings: Settings, workspace: Path
) -> None:
    reply = f"utils.py\n```python\n{UTILS_DOC}```\nThe functions lack docstrings."
    model = model_for("Review utils.py", {"reply": reply})
    task, calls = await run_task(settings, model, workspace, "Look over the helpers")
    assert (workspace / "utils.py").read_text(encoding="utf-8") == UTILS
    assert task.status == "completed"
    assert task.result == reply
    assert calls == []
    (call,) = executor_calls(model)
    assert call["tools"] == OFFERED
    assert UTILS in call["prompt"], "a read-only task still sees the file it names"


async def test_out_of_steps_ends_with_a_report_made_without_tools(
    tmp_path: Path, workspace: Path
) -> None:
    settings = make_settings(tmp_path / "home", max_task_steps=2)
    model = model_for(
        "Survey the project layout",
        {"match": "You have used all your tool calls", "reply": "Found one Python file."},
        {
            "replies": [
                {"tool_calls": [{"name": "list_files", "args": {"pattern": f"*.{ext}"}}]}
                for ext in ("py", "md", "txt")
            ]
        },
    )
    task, calls = await run_task(settings, model, workspace, "Describe the project")
    assert task.status == "completed"
    assert task.result == "Found one Python file."
    assert [(c["step"], c["tool"], c["args"], c["ok"], c["output"]) for c in calls] == [
        (1, "list_files", '{"pattern": "*.py"}', True, "utils.py"),
        (2, "list_files", '{"pattern": "*.md"}', True, "no files match '*.md'"),
    ]
    executed = executor_calls(model)
    assert [c["tools"] for c in executed] == [OFFERED, OFFERED, []]
    assert executed[-1]["messages"][-1].content.startswith("You have used all your tool calls")


async def test_refused_call_is_reported_back_and_the_model_answers_again(
    settings: Settings, workspace: Path
) -> None:
    model = model_for(
        "Clean up the workspace",
        {"replies": [{"tool_calls": [{"name": "delete_everything"}]}, "Nothing deleted."]},
    )
    task, _ = await run_task(settings, model, workspace, "Tidy up")
    assert len(executor_calls(model)) == 2
    assert task.result == "Nothing deleted."
