"""``/v1/profile`` over the real app: read, replace, change and delete one's own profile,
validation errors that name the field, owners kept apart, and ``DELETE /v1/memory``
removing the profile and the operation memory in the same call; ``GET
/v1/operations/{id}`` says what the planner was given."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest


async def _profile(api: Any, owner: str = "alice") -> dict[str, Any]:
    r = await api.client.get("/v1/profile", headers=api.auth(owner))
    assert r.status_code == 200, r.text
    return r.json()


async def test_profile_crud_of_ones_own_profile(api) -> None:
    empty = await _profile(api)
    assert empty["owner"] == "alice" and empty["prompt"] is None
    assert empty["stated"] == {
        "languages": [],
        "frameworks": [],
        "verbosity": None,
        "skill_level": None,
        "notes": None,
    }
    body = {"languages": ["Python", "Go"], "verbosity": "terse", "skill_level": "expert"}
    put = await api.client.put("/v1/profile", json=body, headers=api.auth())
    assert put.status_code == 200, put.text
    assert put.json()["stated"]["languages"] == ["Python", "Go"]
    assert "- Languages: Python, Go" in put.json()["prompt"]
    patch = await api.client.patch(
        "/v1/profile", json={"frameworks": ["FastAPI"], "verbosity": None}, headers=api.auth()
    )
    assert patch.status_code == 200, patch.text
    stated = (await _profile(api))["stated"]
    assert stated["languages"] == ["Python", "Go"] and stated["frameworks"] == ["FastAPI"]
    assert stated["verbosity"] is None and stated["skill_level"] == "expert"
    # PUT replaces: what it leaves out is cleared.
    await api.client.put("/v1/profile", json={"notes": "Prefers small diffs"}, headers=api.auth())
    assert (await _profile(api))["stated"]["languages"] == []
    gone = await api.client.delete("/v1/profile", headers=api.auth())
    assert gone.json() == {"owner": "alice", "deleted": 1}
    assert (await _profile(api))["stated"]["notes"] is None
    assert (await api.client.delete("/v1/profile", headers=api.auth())).json()["deleted"] == 0


@pytest.mark.parametrize(
    ("method", "body", "path", "says"),
    [
        ("PUT", {"verbosity": "chatty"}, "body.verbosity", "'terse', 'normal' or 'detailed'"),
        ("PATCH", {"skill_level": "guru"}, "body.skill_level", "'beginner', 'intermediate'"),
        ("PUT", {"languages": "Python"}, "body.languages", "list"),
        ("PUT", {"languages": ["x" * 41]}, "body.languages.0", "at most 40 characters"),
        ("PATCH", {"frameworks": [""]}, "body.frameworks.0", "at least 1 character"),
        ("PUT", {"languages": [f"l{i}" for i in range(21)]}, "body.languages", "at most 20"),
        ("PATCH", {"notes": "n" * 501}, "body.notes", "at most 500 characters"),
        ("PUT", {"colour": "blue"}, "body.colour", "Extra inputs are not permitted"),
        ("PATCH", ["Python"], "body", "object"),
    ],
    ids=[
        "verbosity",
        "skill",
        "list",
        "long-item",
        "empty-item",
        "too-many",
        "notes",
        "unknown",
        "not-object",
    ],
)
async def test_bad_input_is_422_naming_the_field(api, method, body, path, says) -> None:
    await api.client.put("/v1/profile", json={"languages": ["Rust"]}, headers=api.auth())
    r = await api.client.request(method, "/v1/profile", json=body, headers=api.auth())
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["details"][0]["path"] == path
    assert says.lower() in error["message"].lower()
    assert (await _profile(api))["stated"]["languages"] == ["Rust"]  # nothing changed


async def test_one_owner_never_sees_or_changes_anothers_profile(api) -> None:
    await api.client.put("/v1/profile", json={"languages": ["Python"]}, headers=api.auth())
    assert (await _profile(api, "bob"))["stated"]["languages"] == []
    await api.client.patch("/v1/profile", json={"languages": ["Go"]}, headers=api.auth("bob"))
    assert (await api.client.delete("/v1/profile", headers=api.auth("bob"))).json() == {
        "owner": "bob",
        "deleted": 1,
    }
    assert (await _profile(api))["stated"]["languages"] == ["Python"]
    r = await api.client.get("/v1/profile")
    assert r.status_code == 401  # no key, no profile


async def _finished(api: Any, owner: str, request: str, workspace: str) -> dict[str, Any]:
    r = await api.client.post(
        "/v1/operations",
        json={"request": request, "workspace": workspace, "route": "plan"},
        headers=api.auth(owner),
    )
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 30  # a hang guard
    while True:
        op = (await api.client.get(r.json()["links"]["self"], headers=api.auth(owner))).json()
        if op["status"] in ("completed", "failed"):
            break
        assert time.monotonic() < deadline, op
        await asyncio.sleep(0.05)
    await api.app.state.chief.services.history.settle()  # stored in the background
    return op


async def test_the_operation_record_says_what_the_planner_got_and_forget_deletes_it(
    api_factory, tmp_path: Path
) -> None:
    root = tmp_path / "roots"
    (root / "service").mkdir(parents=True)
    (root / "service" / "client.py").write_text("def get(url):\n    return url\n")
    workspace = str(root / "service")
    async with api_factory(api={"workspace_roots": [str(root)]}) as api:
        await api.client.put("/v1/profile", json={"frameworks": ["httpx"]}, headers=api.auth())
        first = await _finished(api, "alice", "Add retries to the HTTP client", workspace)
        assert first["planning_context"]["profile"]["stated"] == ["frameworks"]
        assert "memory" not in first["planning_context"]
        bobs = await _finished(api, "bob", "Add retries to the HTTP client", workspace)
        assert bobs["planning_context"] is None  # neither alice's history nor her profile
        again = await _finished(
            api, "alice", "Add retries with backoff to the HTTP client", workspace
        )
        (added,) = again["planning_context"]["memory"]["added"]
        assert added["operation"] == first["id"] and added["score"] >= 0.7

        r = await api.client.delete("/v1/memory", headers=api.auth())
        assert r.status_code == 200, r.text
        deleted = r.json()["deleted"]
        assert deleted["operation_memory"] == 2 and deleted["profile"] == 1
        assert (await _profile(api))["stated"]["frameworks"] == []
        memory = api.app.state.chief.services.history.operation_memory()
        assert memory.store.count("alice") == 0 and memory.store.count("bob") == 1
        after = await _finished(
            api, "alice", "Add retries with backoff to the HTTP client", workspace
        )
        assert after["planning_context"] is None
