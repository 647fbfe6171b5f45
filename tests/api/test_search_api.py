"""``POST /v1/search``: hybrid code search over HTTP, per owner, with clear refusals."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture
def roots(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "projects"
    workspace = root / "shop"
    workspace.mkdir(parents=True)
    (workspace / "cart.py").write_text(
        "def apply_discount(total, percent):\n"
        '    """Reduce the total by a percentage coupon."""\n'
        "    return total * (1 - percent / 100)\n\n\n"
        "def shipping_cost(weight):\n    return 5 + weight * 0.5\n"
    )
    return root, workspace


async def test_a_search_returns_ranked_hits_with_reasons(
    api_factory: Callable[..., Any], roots: tuple[Path, Path]
) -> None:
    root, workspace = roots
    async with api_factory(api={"workspace_roots": [str(root)]}) as api:
        body = {"workspace": str(workspace), "query": "coupon percentage off the total", "k": 2}
        response = await api.client.post("/v1/search", json=body, headers=api.auth())
        assert response.status_code == 200, response.text
        found = response.json()
        assert found["mode"] == "hybrid" and found["index"]["files"] == 1
        assert found["index"]["refresh"]["added"] == 1  # the first search indexed it
        hit = found["hits"][0]
        assert (hit["path"], hit["symbol"], hit["start_line"], hit["end_line"]) == (
            "cart.py",
            "apply_discount",
            1,
            3,
        )
        assert hit["bm25"]["rank"] == 1 and hit["vector"]["rank"] >= 1
        assert "coupon" in hit["matched"] and hit["why"].startswith("keywords #1")
        assert "return total * (1 - percent / 100)" in hit["text"]

        again = await api.client.post(
            "/v1/search", json={**body, "mode": "bm25"}, headers=api.auth("bob")
        )
        assert again.json()["index"]["refresh"]["added"] == 1  # bob's own index
        assert again.json()["hits"][0]["vector"] is None


@pytest.mark.parametrize(
    ("change", "path", "expected"),
    [
        ({"query": ""}, "body.query", "at least 1 character"),
        ({"k": 0}, "body.k", "greater than or equal to 1"),
        ({"mode": "fuzzy"}, "body.mode", "'hybrid', 'bm25' or 'vector'"),
        ({"glob": "../*"}, "body.glob", "must be relative to the workspace"),
        ({"workspace": "/etc"}, "body.workspace", "is not under an allowed root"),
        ({"workspace": "relative/dir"}, "body.workspace", "expected an absolute path"),
        ({"refresh": "sometimes"}, "body.refresh", "'auto', 'now' or 'never'"),
        ({"extra": 1}, "body.extra", "Extra inputs are not permitted"),
    ],
)
async def test_bad_fields_are_refused_naming_the_field(
    api_factory: Callable[..., Any],
    roots: tuple[Path, Path],
    change: dict[str, Any],
    path: str,
    expected: str,
) -> None:
    root, workspace = roots
    async with api_factory(api={"workspace_roots": [str(root)]}) as api:
        body = {"workspace": str(workspace), "query": "discount", **change}
        response = await api.client.post("/v1/search", json=body, headers=api.auth())
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "invalid_request"
        assert any(d["path"] == path and expected in d["message"] for d in error["details"]), error


async def test_a_missing_workspace_and_a_missing_key_are_refused(
    api_factory: Callable[..., Any], roots: tuple[Path, Path]
) -> None:
    root, _ = roots
    async with api_factory(api={"workspace_roots": [str(root)]}) as api:
        body = {"workspace": str(root / "gone"), "query": "discount"}
        response = await api.client.post("/v1/search", json=body, headers=api.auth())
        assert response.status_code == 422
        assert response.json()["error"]["details"][0]["path"] == "body.workspace"
        assert (await api.client.post("/v1/search", json=body)).status_code == 401
