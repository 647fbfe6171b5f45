"""The OpenAPI document describes every route, its errors and its security."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.routing import APIRoute

from crewchief.api.errors import is_gateway_path

ERROR_REF = "#/components/schemas/ErrorResponse"
METHODS = {"get", "post", "put", "patch", "delete"}


@pytest.fixture
async def spec(api) -> dict[str, Any]:
    r = await api.client.get("/openapi.json")
    assert r.status_code == 200
    return r.json()


def _operations(spec: dict[str, Any]):
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in METHODS:
                yield path, method, op


def _refs(node: Any):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _resolve(spec: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = spec
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"unresolved $ref {ref}"
        node = node[part]
    return node


def _api_routes(routes: list, prefix: str = ""):
    """``(method, path)`` of every API route, also inside included routers."""
    for route in routes:
        if isinstance(route, APIRoute):
            if route.include_in_schema:
                yield from ((m, prefix + route.path) for m in route.methods)
        elif hasattr(route, "original_router"):  # FastAPI >= 0.160 wraps included routers
            context = route.include_context
            if context.include_in_schema:
                yield from _api_routes(route.original_router.routes, prefix + context.prefix)


async def test_every_route_is_documented(api, spec) -> None:
    documented = {(m.upper(), p) for p, m, _ in _operations(spec)}
    routes = set(_api_routes(api.app.routes))
    assert routes == documented
    # And every documented route is served (no "no route" 404).
    for method, path in documented:
        url = path.replace("{operation_id}", "nope").replace("{task_id}", "1")
        r = await api.client.request(method, url, headers=api.auth())
        assert r.status_code != 405, (method, path)
        if r.status_code == 404:
            assert r.json()["error"]["code"] == "operation_not_found", (method, path)
    assert {
        ("POST", "/v1/operations"),
        ("GET", "/v1/operations"),
        ("GET", "/v1/operations/{operation_id}"),
        ("POST", "/v1/operations/{operation_id}/cancel"),
        ("POST", "/v1/operations/{operation_id}/plan"),
        ("POST", "/v1/operations/{operation_id}/tasks/{task_id}/rerun"),
        ("GET", "/v1/operations/{operation_id}/events"),
        ("GET", "/healthz"),
        ("GET", "/readyz"),
    } <= documented
    for _, _, op in _operations(spec):
        assert op.get("summary"), op["operationId"]


async def test_v1_operations_document_their_errors(spec) -> None:
    v1 = [(p, m, op) for p, m, op in _operations(spec) if p.startswith("/v1/")]
    assert len(v1) >= 7
    for path, method, op in v1:
        # OpenAI clients read OpenAI's error shape (the request log, tagged gateway too, is ours).
        gateway = is_gateway_path(path)
        if gateway:
            expected = {"401", "429"} | ({"400"} if method == "post" else set())
        else:
            expected = {"401", "422", "429"} | ({"404"} if "{operation_id}" in path else set())
        for status in expected:
            response = op["responses"].get(status)
            assert response, f"{method.upper()} {path} does not document {status}"
            schema = response["content"]["application/json"]["schema"]
            ref = "#/components/schemas/OpenAIError" if gateway else ERROR_REF
            assert schema == {"$ref": ref}, (method, path, status)
        assert "integer" in str(op["responses"]["429"]["headers"]["Retry-After"])
        assert op["security"] == [{"HTTPBearer": []}], (method, path)


async def test_optional_parameters_are_not_documented_as_null(spec) -> None:
    # A query or header parameter is sent or left out; the string "null" is not a value.
    params = [p for _, _, op in _operations(spec) for p in op.get("parameters", [])]
    assert {p["name"] for p in params} >= {"status", "cursor", "Last-Event-ID", "last_event_id"}
    for param in params:
        assert "null" not in str(param["schema"]), param
    status = next(p for p in params if p["name"] == "status")
    assert "completed" in status["schema"]["enum"]


async def test_probes_are_public(spec) -> None:
    for path in ("/healthz", "/readyz"):
        assert "security" not in spec["paths"][path]["get"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


async def test_error_response_schema_has_the_common_shape(spec) -> None:
    error = _resolve(spec, ERROR_REF)
    info = _resolve(spec, error["properties"]["error"]["$ref"])
    assert set(info["required"]) == {"code", "message"}
    detail = _resolve(spec, info["properties"]["details"]["items"]["$ref"])
    assert {"path", "message", "type"} <= set(detail["properties"])


async def test_every_ref_resolves(spec) -> None:
    refs = set(_refs(spec))
    assert ERROR_REF in refs
    for ref in refs:
        _resolve(spec, ref)


async def test_event_stream_is_documented_as_sse(spec) -> None:
    op = spec["paths"]["/v1/operations/{operation_id}/events"]["get"]
    assert "text/event-stream" in op["responses"]["200"]["content"]
    assert "application/json" not in op["responses"]["200"]["content"]
    assert "204" in op["responses"]
    params = {p["name"] for p in op["parameters"]}
    assert {"operation_id", "Last-Event-ID", "last_event_id", "deltas"} <= params


async def test_create_body_is_described(spec) -> None:
    op = spec["paths"]["/v1/operations"]["post"]
    ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body = _resolve(spec, ref)
    assert body["required"] == ["request"]
    assert body["additionalProperties"] is False
    assert set(body["properties"]) == {
        "request",
        "workspace",
        "route",
        "approve_plan",
        "models",
        "metadata",
    }
    assert body["properties"]["request"]["maxLength"] == 100_000


async def test_docs_page_is_served(api) -> None:
    r = await api.client.get("/docs")
    assert r.status_code == 200 and "swagger" in r.text.lower()
