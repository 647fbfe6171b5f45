"""Bad requests: 422 with field paths, 413 for oversized bodies, and nothing recorded."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

BIG = "x" * 100_001


async def _assert_nothing_recorded(api) -> None:
    for owner in ("alice", "bob"):
        r = await api.client.get("/v1/operations", headers=api.auth(owner))
        assert r.status_code == 200
        assert r.json()["items"] == []


def _paths(r: httpx.Response) -> list[str]:
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"]
    return [d["path"] for d in error["details"]]


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({}, "body.request"),
        ({"request": 5}, "body.request"),
        ({"request": ""}, "body.request"),
        ({"request": " \n\t "}, "body.request"),
        ({"request": BIG}, "body.request"),
        ({"request": "x", "approve_plan": "maybe"}, "body.approve_plan"),
        ({"request": "x", "metadata": ["not", "an", "object"]}, "body.metadata"),
        ({"request": "x", "surprise": 1}, "body.surprise"),
        ({"request": "x", "route": "slow"}, "body.route"),
        ({"request": "x", "metadata": {"blob": "m" * 17_000}}, "body.metadata"),
        ({"request": "x", "models": {"planner": "fake:default"}}, "body.models.planner"),
        ({"request": "x", "models": {"delegate": "openai:gpt-4.1"}}, "body.models.delegate"),
        ({"request": "x", "models": {"fast": 7}}, "body.models.fast"),
        ({"request": "x", "workspace": "/tmp"}, "body.workspace"),  # no roots configured
        ([{"request": "x"}], "body"),
    ],
    ids=[
        "missing-request",
        "request-not-a-string",
        "request-empty",
        "request-blank",
        "request-too-long",
        "approve-plan-not-bool",
        "metadata-not-object",
        "extra-field",
        "route-slow",
        "metadata-over-16kB",
        "models-unknown-alias",
        "models-spec-not-allowed",
        "models-spec-not-string",
        "workspace-without-roots",
        "body-not-object",
    ],
)
async def test_invalid_create_is_422_with_the_field_path(api, body, path) -> None:
    r = await api.client.post("/v1/operations", json=body, headers=api.auth())
    paths = _paths(r)
    assert paths[0] == path
    if path != "body":
        assert path in r.json()["error"]["message"]
    await _assert_nothing_recorded(api)


DEEP = b'{"request": "x", "metadata": {"a": ' + b"[" * 5000 + b"]" * 5000 + b"}}"


@pytest.mark.parametrize(
    "content", [b'{"request": "x",', b"\xff\xfe{", DEEP, b""], ids=["json", "utf8", "deep", "empty"]
)
async def test_invalid_json_is_422_at_body(api, content) -> None:
    headers = {**api.auth(), "Content-Type": "application/json"}
    r = await api.client.post("/v1/operations", content=content, headers=headers)
    assert _paths(r) == ["body"]
    if content:
        assert "not valid JSON" in r.json()["error"]["message"]
    await _assert_nothing_recorded(api)


async def test_wrong_method_names_the_allowed_ones(api) -> None:
    r = await api.client.delete("/v1/operations", headers=api.auth())
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, POST"
    assert r.json()["error"]["code"] == "method_not_allowed"
    r = await api.client.put("/v1/operations/some-id/cancel", headers=api.auth())
    assert r.status_code == 405 and r.headers["allow"] == "POST"


@pytest.mark.parametrize(
    ("query", "path"),
    [
        ("limit=0", "query.limit"),
        ("limit=101", "query.limit"),
        ("limit=ten", "query.limit"),
        ("status=bogus", "query.status"),
        ("cursor=not-a-cursor", "query.cursor"),
        ("cursor=WzEsMl0", "query.cursor"),  # base64 of [1,2]: decodes, but is no cursor
        ("cursor=" + "A" * 600, "query.cursor"),
    ],
)
async def test_invalid_list_query_is_422(api, query, path) -> None:
    r = await api.client.get(f"/v1/operations?{query}", headers=api.auth())
    assert _paths(r) == [path]


async def test_plan_and_rerun_bodies_are_validated(api) -> None:
    r = await api.client.post("/v1/operations", json={"request": "hi"}, headers=api.auth())
    op = r.json()["id"]
    plan = f"/v1/operations/{op}/plan"
    cases = [
        ({"action": "approve"}, ["body"]),
        ({"action": "edit", "tasks": []}, ["body.tasks"]),
        ({"action": "edit", "tasks": [{"description": ""}]}, ["body.tasks.0.description"]),
        ({"action": "replan", "feedback": "f", "extra": 1}, ["body.extra"]),
    ]
    for body, paths in cases:
        assert _paths(await api.client.post(plan, json=body, headers=api.auth())) == paths
    rerun = f"/v1/operations/{op}/tasks"
    r = await api.client.post(f"{rerun}/0/rerun", json={}, headers=api.auth())
    assert _paths(r) == ["path.task_id"]
    r = await api.client.post(f"{rerun}/1/rerun", json={"bogus": 1}, headers=api.auth())
    assert _paths(r) == ["body.bogus"]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "allowed"
    (root / "project" / "src").mkdir(parents=True)
    (root / "notes.txt").write_text("a file, not a directory")
    (tmp_path / "elsewhere").mkdir()
    return root


@pytest.mark.parametrize(
    "workspace",
    [
        "{tmp}/elsewhere",
        "{root}/../elsewhere",
        "relative/project",
        "{root}/missing",
        "{root}/notes.txt",
        "/",
    ],
    ids=["outside", "dot-dot-escape", "relative", "missing", "a-file", "filesystem-root"],
)
async def test_workspace_must_be_a_directory_under_an_allowed_root(
    api_factory, root, tmp_path, workspace
) -> None:
    async with api_factory(api={"workspace_roots": [str(root)]}) as api:
        value = workspace.format(root=root, tmp=tmp_path)
        body = {"request": "List the files", "workspace": value}
        r = await api.client.post("/v1/operations", json=body, headers=api.auth())
        assert _paths(r) == ["body.workspace"]
        assert value in r.json()["error"]["message"]
        await _assert_nothing_recorded(api)


async def test_workspace_escaping_through_a_symlink_is_refused(api_factory, root, tmp_path):
    os.symlink(tmp_path / "elsewhere", root / "link")
    async with api_factory(api={"workspace_roots": [str(root)]}) as api:
        body = {"request": "List the files", "workspace": str(root / "link")}
        r = await api.client.post("/v1/operations", json=body, headers=api.auth())
        assert _paths(r) == ["body.workspace"]
        await _assert_nothing_recorded(api)


async def test_workspace_under_an_allowed_root_is_recorded_resolved(api_factory, root) -> None:
    async with api_factory(api={"workspace_roots": [str(root)]}) as api:
        given = f"{root}/project/src/../."
        body = {"request": "List the files", "workspace": given}
        r = await api.client.post("/v1/operations", json=body, headers=api.auth())
        assert r.status_code == 202, r.text
        op = await api.client.get(f"/v1/operations/{r.json()['id']}", headers=api.auth())
        assert op.json()["workspace"] == str((root / "project").resolve())


async def test_allowed_models_may_be_bound_per_operation(api_factory) -> None:
    spec = "fake:default?tasks=1"
    async with api_factory(api={"allowed_models": [spec]}) as api:
        body = {"request": "x", "models": {"delegate": spec}}
        r = await api.client.post("/v1/operations", json=body, headers=api.auth())
        assert r.status_code == 202, r.text
        body = {"request": "x", "models": {"delegate": "fake:default?tasks=2"}}
        r = await api.client.post("/v1/operations", json=body, headers=api.auth())
        assert _paths(r) == ["body.models.delegate"]


async def test_body_over_the_limit_is_413(api_factory) -> None:
    async with api_factory(api={"max_body_bytes": 2048}) as api:
        body = {"request": "y" * 4000}
        r = await api.client.post("/v1/operations", json=body, headers=api.auth())
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"
        # Just under the limit still works.
        r = await api.client.post(
            "/v1/operations", json={"request": "y" * 1900}, headers=api.auth()
        )
        assert r.status_code == 202
        r = await api.client.get("/v1/operations", headers=api.auth())
        assert len(r.json()["items"]) == 1


def _chunks(total: int, size: int = 512):
    yield b'{"request": "'
    for _ in range(total // size):
        yield b"z" * size
    yield b'"}'


def test_chunked_body_over_the_limit_is_413(live_server_factory) -> None:
    server = live_server_factory(env={"CREWCHIEF_API_MAX_BODY": "4096"})
    url = f"{server.url}/v1/operations"
    headers = {**server.auth(), "Content-Type": "application/json"}
    with httpx.Client(timeout=10) as client:
        r = client.post(url, content=_chunks(64 * 1024), headers=headers)
        assert r.status_code == 413
        assert r.json()["error"]["code"] == "payload_too_large"
        # A declared Content-Length over the limit is refused too.
        r = client.post(url, json={"request": "z" * 8000}, headers=headers)
        assert r.status_code == 413
        # A small chunked body is fine.
        r = client.post(url, content=_chunks(1024), headers=headers)
        assert r.status_code == 202, r.text
        items = client.get(url, headers=server.auth()).json()["items"]
    assert [i["id"] for i in items] == [r.json()["id"]]


async def test_chunked_body_over_the_limit_is_413_over_asgi(api_factory) -> None:
    async def chunks():
        for piece in _chunks(8192):
            yield piece
            await asyncio.sleep(0)

    async with api_factory(api={"max_body_bytes": 1024}) as api:
        headers = {**api.auth(), "Content-Type": "application/json"}
        r = await api.client.post("/v1/operations", content=chunks(), headers=headers)
        assert r.status_code == 413
        assert "content-length" not in r.request.headers
        await _assert_nothing_recorded(api)
