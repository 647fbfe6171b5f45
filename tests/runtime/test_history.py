"""Operation memory and profiles as the planner sees them, on each storage backend: a finished
operation comes back in a later plan of the same owner in the same workspace (and of nobody
else, nowhere else), the profile joins the planner's prompt, the operation record says what
was added and why, and forgetting deletes rows and vectors."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crewchief import Crewchief, FakeChatModel, FakeScript
from crewchief.config import Settings
from crewchief.errors import InvalidRequest
from tests.conftest import plan_reply

ASKED = "Add retries with exponential backoff to the HTTP client"
ASKED_AGAIN = "Add retries with backoff to the HTTP client"


def _workspaces(tmp_path: Path) -> tuple[str, str]:
    out = []
    for name in ("service", "other"):
        root = tmp_path / name
        root.mkdir()
        (root / "client.py").write_text("def get(url):\n    return url\n")
        out.append(str(root))
    return out[0], out[1]


def _planner_prompt(model: FakeChatModel) -> str:
    return [c for c in model.calls if c["node"] == "plan" and c["alias"] == "orchestrator"][-1][
        "prompt"
    ]


async def _plan(cc: Crewchief, request: str, workspace: str, owner: str | None) -> Any:
    done = await cc.run(request, workspace=workspace, route="plan", owner=owner)
    await cc.services.history.settle()  # its memory is stored in the background
    return await cc.get(done.id, events=True)


async def test_a_finished_operation_comes_back_in_a_later_plan_of_its_owner_and_workspace(
    backend_settings: Settings, tmp_path: Path
) -> None:
    service, other = _workspaces(tmp_path)
    model = FakeChatModel()
    async with Crewchief(backend_settings, models={"orchestrator": model, "delegate": model}) as cc:
        first = await _plan(cc, ASKED, service, "alice")
        assert first.status == "completed"
        assert first.planning_context is None  # nothing earlier, and never itself
        # Another owner in the same workspace, and the owner in another workspace: nothing.
        assert (await _plan(cc, ASKED_AGAIN, service, "bob")).planning_context is None
        assert "Relevant history" not in _planner_prompt(model)
        assert (await _plan(cc, ASKED_AGAIN, other, "alice")).planning_context is None
        # The owner again in the same workspace: the first operation, and only it.
        again = await _plan(cc, ASKED_AGAIN, service, "alice")
    memory = again.planning_context["memory"]
    (added,) = memory["added"]
    assert added["operation"] == first.id and added["status"] == "completed"
    assert added["asked"] == ASKED and added["score"] >= 0.7
    assert "same owner in the same workspace" in memory["why"]
    (event,) = [e.payload for e in again.events if e.type == "plan.context"]
    assert event["memory"]["added"] == memory["added"] and event["round"] == 1
    prompt = _planner_prompt(model)
    assert "Relevant history" in prompt and f"Asked: {ASKED}" in prompt
    assert f"Plan: 1. {first.tasks[0].description}" in prompt
    assert f"Outcome: completed: {first.answer}" in prompt


async def test_a_failed_operation_is_remembered_and_forgetting_deletes_memory_and_profile(
    backend_settings: Settings, tmp_path: Path
) -> None:
    service, _ = _workspaces(tmp_path)
    script = FakeScript.model_validate(
        {
            "rules": [
                {"node": "plan", "alias": "orchestrator", "reply": plan_reply("Write the parser")},
                {"node": "execute_task", "times": 1, "reply": {"error": "disk full"}},
            ]
        }
    )
    model = FakeChatModel(script=script)
    async with Crewchief(backend_settings, models={"orchestrator": model, "delegate": model}) as cc:
        failed = await _plan(cc, "Write the parser for the config files", service, None)
        assert failed.status == "failed"
        await cc.set_profile(None, {"languages": ["Python"], "verbosity": "terse"})
        later = await _plan(cc, "Write a parser for the config files", service, None)
        assert [a["operation"] for a in later.planning_context["memory"]["added"]] == [failed.id]
        assert later.planning_context["memory"]["added"][0]["status"] == "failed"
        assert "Outcome: failed" in _planner_prompt(model)
        assert later.planning_context["profile"] == {
            "added": True,
            "stated": ["languages", "verbosity"],
            "learned": [],
        }
        assert "About this user" in _planner_prompt(model)
        assert "- Verbosity: terse" in _planner_prompt(model)

        deleted = await cc.forget(None)
        assert deleted["operation_memory"] == 2 and deleted["profile"] == 1
        memory = cc.services.history.operation_memory()
        assert memory is not None and memory.store.count(None) == 0  # vectors gone
        gone = await cc.profile(None)
        assert gone.stated.empty and gone.learned.empty and gone.updated_at is None
        after = await _plan(cc, "Write a parser for the config files", service, None)
        assert after.planning_context is None


async def test_profiles_are_stored_changed_and_deleted_per_owner(
    backend_settings: Settings,
) -> None:
    async with Crewchief(backend_settings) as cc:
        stated = await cc.set_profile("alice", {"languages": ["Python"], "frameworks": ["Django"]})
        assert stated.stated.languages == ["Python"] and stated.updated_at is not None
        patched = await cc.set_profile("alice", {"frameworks": ["FastAPI"]}, merge=True)
        assert patched.stated.languages == ["Python"]  # kept
        assert patched.stated.frameworks == ["FastAPI"]  # replaced
        replaced = await cc.set_profile("alice", {"verbosity": "detailed"})
        assert replaced.stated.languages == [] and replaced.stated.verbosity == "detailed"
        with pytest.raises(InvalidRequest) as refused:
            await cc.set_profile("alice", {"skill_level": "wizard"}, merge=True)
        assert str(refused.value).startswith("skill_level: ")
        assert (await cc.profile("alice")).stated.verbosity == "detailed"  # nothing stored
        assert (await cc.profile("bob")).stated.empty  # one owner's profile is theirs
        assert await cc.delete_profile("bob") == 0
        assert await cc.delete_profile("alice") == 1
        assert (await cc.profile("alice")).stated.empty


async def test_the_memory_setting_keeps_operations_out_of_the_planners_prompt(
    tmp_path: Path,
) -> None:
    from tests.conftest import make_settings

    service, _ = _workspaces(tmp_path)
    settings = make_settings(tmp_path / "home", knowledge={"memory": False, "profiles": False})
    model = FakeChatModel()
    async with Crewchief(settings, models={"orchestrator": model, "delegate": model}) as cc:
        await cc.set_profile("alice", {"languages": ["Python"]})
        await _plan(cc, ASKED, service, "alice")
        again = await _plan(cc, ASKED_AGAIN, service, "alice")
        assert cc.services.history.operation_memory() is None
    assert again.planning_context is None
    assert "About this user" not in _planner_prompt(model)


def test_scaled_mode_keeps_operation_memory_only_on_a_shared_chroma_server(tmp_path: Path) -> None:
    from crewchief.knowledge.stores import VectorStores
    from crewchief.runtime.history import History
    from tests.conftest import make_settings

    def history(settings: Settings) -> History:
        return History(settings, store=object(), vectors=VectorStores(settings))  # type: ignore[arg-type]

    assert history(make_settings(tmp_path / "a", executor="queue")).operation_memory() is None
    shared = make_settings(
        tmp_path / "b", executor="queue", knowledge={"chroma_url": "http://127.0.0.1:9"}
    )
    assert history(shared).operation_memory() is not None  # connects on first use
    assert history(make_settings(tmp_path / "c")).operation_memory() is not None
