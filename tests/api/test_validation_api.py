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


# -- unusable workspace paths, strict types, NaN, blank plan tasks, model allowlist --------

LONG_NAME = "a" * 300  # one path component over the 255 bytes a file name may have


@pytest.fixture
def looped(root: Path) -> Path:
    """``root/loop``: a symbolic link to itself (``ln -s loop loop``)."""
    os.symlink("loop", root / "loop")
    return root / "loop"


@pytest.mark.parametrize(
    "workspace",
    ["{root}/" + LONG_NAME, "{root}/project/" + LONG_NAME + "/src", "{root}/loop", "{root}/loop/x"],
    ids=["long-name", "long-name-inside", "symlink-loop", "through-symlink-loop"],
)
async def test_unusable_workspace_path_is_422_naming_the_field(
    api_factory, root, looped, workspace
) -> None:
    async with api_factory(api={"workspace_roots": [str(root)]}) as api:
        body = {"request": "List the files", "workspace": workspace.format(root=root)}
        r = await api.client.post("/v1/operations", json=body, headers=api.auth())
        assert _paths(r) == ["body.workspace"]
        assert r.json()["error"]["message"].startswith("body.workspace: ")
        await _assert_nothing_recorded(api)


def test_unusable_workspace_on_a_real_server_is_422_and_the_connection_stays_open(
    live_server_factory, tmp_path
) -> None:
    root = tmp_path / "roots"
    root.mkdir()
    os.symlink("loop", root / "loop")
    server = live_server_factory(args=["--workspace-root", str(root)])
    url = f"{server.url}/v1/operations"
    with httpx.Client(timeout=10, headers=server.auth()) as client:
        for workspace in (f"{root}/{LONG_NAME}", f"{root}/loop", f"{root}/loop/deeper"):
            r = client.post(url, json={"request": "List the files", "workspace": workspace})
            assert r.status_code == 422, r.text
            assert r.json()["error"]["details"][0]["path"] == "body.workspace"
            assert r.headers.get("connection") != "close"
        # The same connection still serves the next request.
        assert client.get(url).status_code == 200


async def test_library_refuses_unusable_workspaces_with_invalid_request(api, tmp_path) -> None:
    from crewchief.errors import InvalidRequest

    os.symlink("loop", tmp_path / "loop")
    chief = api.app.state.chief
    for workspace in (
        f"{tmp_path}/{LONG_NAME}",
        tmp_path / "loop",
        f"{tmp_path}/loop/x",
        f"{tmp_path}/nul\x00byte",
        "~no-such-user-here/project",
    ):
        with pytest.raises(InvalidRequest) as info:
            await chief.start("List the files", workspace=workspace)
        assert str(info.value).startswith("workspace: "), info.value
    await _assert_nothing_recorded(api)


@pytest.mark.parametrize("value", ["yes", "true", "false", 1, 0, "1", None])
async def test_approve_plan_must_be_a_json_boolean(api, value) -> None:
    body = {"request": "x", "approve_plan": value}
    r = await api.client.post("/v1/operations", json=body, headers=api.auth())
    assert _paths(r) == ["body.approve_plan"]
    await _assert_nothing_recorded(api)


@pytest.mark.parametrize(
    "metadata",
    [b'{"score": NaN}', b'{"a": {"b": [1, Infinity]}}', b'{"low": -Infinity}'],
    ids=["nan", "nested-infinity", "minus-infinity"],
)
async def test_nan_or_infinity_in_metadata_is_422(api, metadata) -> None:
    content = b'{"request": "x", "metadata": ' + metadata + b"}"
    headers = {**api.auth(), "Content-Type": "application/json"}
    r = await api.client.post("/v1/operations", content=content, headers=headers)
    assert _paths(r) == ["body.metadata"]
    assert "NaN" in r.json()["error"]["message"]
    await _assert_nothing_recorded(api)


async def test_plan_edit_bodies_are_strict_and_need_a_real_description(api) -> None:
    r = await api.client.post("/v1/operations", json={"request": "hi"}, headers=api.auth())
    plan = f"/v1/operations/{r.json()['id']}/plan"
    cases = [
        ({"action": "edit", "tasks": [{"description": " \n\t "}]}, "body.tasks.0.description"),
        (
            {"action": "edit", "tasks": [{"description": "a"}, {"description": "  "}]},
            "body.tasks.1.description",
        ),
        (
            {"action": "edit", "tasks": [{"description": "a"}, {"description": "b", "depends_on": ["1"]}]},
            "body.tasks.1.depends_on.0",
        ),
        (
            {"action": "edit", "tasks": [{"description": "a"}, {"description": "b", "depends_on": [1.0]}]},
            "body.tasks.1.depends_on.0",
        ),
    ]  # fmt: skip
    for body, path in cases:
        r = await api.client.post(plan, json=body, headers=api.auth())
        assert _paths(r) == [path], body
        assert path in r.json()["error"]["message"]


def test_library_plan_decision_refuses_a_blank_task_description() -> None:
    from crewchief.steering import InvalidDecision, parse_decision

    with pytest.raises(InvalidDecision) as info:
        parse_decision({"action": "edit", "tasks": [{"description": "ok"}, {"description": " "}]})
    # parse_decision's paths start with the union's tag ("edit."), as for every edit error.
    [detail] = info.value.details
    assert detail["path"].endswith("tasks.1.description"), detail


async def test_disallowed_model_names_the_rule_not_the_servers_models(api_factory) -> None:
    secret = "local:/srv/private/models/secret-model.gguf"
    async with api_factory(api={"allowed_models": ["fake:default?tasks=1", secret]}) as api:
        body = {"request": "x", "models": {"delegate": "openai:x"}}
        r = await api.client.post("/v1/operations", json=body, headers=api.auth())
        assert _paths(r) == ["body.models.delegate"]
        message = r.json()["error"]["message"]
        assert "'openai:x'" in message and "api.allowed_models" in message
        for leaked in ("fake:default", "/srv/private", "secret-model", "local:"):
            assert leaked not in r.text, message


@pytest.mark.parametrize(
    ("metadata", "says"),
    [
        ({"a": [1, {"b": float("nan")}]}, "metadata.a.1.b"),
        ({"x": float("inf")}, "NaN or Infinity"),
        (["not", "an", "object"], "expected an object"),
        ({"blob": "x" * 20_000}, "at most 16384 bytes"),
        ({"when": object()}, "JSON values only"),
    ],
)
async def test_library_refuses_bad_metadata_with_invalid_request(api, metadata, says) -> None:
    from crewchief.errors import InvalidRequest

    with pytest.raises(InvalidRequest) as info:
        await api.app.state.chief.start("List the files", metadata=metadata)
    assert str(info.value).startswith("metadata: ") and says in str(info.value), info.value
    await _assert_nothing_recorded(api)
