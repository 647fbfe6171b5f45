"""``POST /v1/search``: hybrid code search over a workspace, with scores and reasons."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from crewchief.api.deps import CallerDep, ChiefDep, SettingsDep
from crewchief.api.errors import ERROR_RESPONSES
from crewchief.api.routes.operations import check_workspace

router = APIRouter(prefix="/v1", tags=["search"], responses=ERROR_RESPONSES)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    workspace: str = Field(
        max_length=4096,
        description="The directory to search, an absolute path under one of the server's"
        " `api.workspace_roots`.",
    )
    query: str = Field(
        min_length=1,
        max_length=2000,
        description="What to look for: words, a question, or identifiers.",
    )
    k: int = Field(10, ge=1, le=50, description="How many hits to return.")
    mode: Literal["hybrid", "bm25", "vector"] = Field(
        "hybrid",
        description="`hybrid`: BM25 and vector rankings fused by reciprocal rank; `bm25` or"
        " `vector`: one ranking alone.",
    )
    glob: str | None = Field(
        None, max_length=1000, description="Only files matching this glob, e.g. `src/**/*.py`."
    )
    refresh: Literal["auto", "now", "never"] = Field(
        "auto",
        description="`auto`: an index never built is built first, a stale one is refreshed in"
        " the background; `now`: refresh first; `never`: search the index as it is.",
    )


class Ranked(BaseModel):
    rank: int = Field(description="The hit's place in that ranking (1 = first).")
    score: float | None = Field(None, description="BM25 score.")
    similarity: float | None = Field(None, description="Cosine similarity to the query.")


class SearchHitPublic(BaseModel):
    path: str = Field(description="The file, relative to the workspace.")
    start_line: int
    end_line: int
    symbol: str = Field(
        description="The definition (`Class.method`), the document's heading path, or empty."
    )
    kind: str = Field(
        description="`function`, `class`, `method`, ..., `section`, `module` or `lines`."
    )
    score: float = Field(
        description="The fused score: the sum of 1 / (5 + rank) over the rankings that hold it."
    )
    bm25: Ranked | None = Field(description="Its place in the keyword ranking, if any.")
    vector: Ranked | None = Field(description="Its place in the meaning ranking, if any.")
    matched: list[str] = Field(description="The query's words found in it.")
    why: str = Field(description="Why it matched, in words.")
    text: str = Field(description="The chunk's text.")


class IndexState(BaseModel):
    files: int
    chunks: int
    vectors: bool = Field(description="Whether the index has vectors (false: BM25 only).")
    refresh: dict[str, Any] | None = Field(
        description="What the refresh this search waited for changed: files added, changed,"
        " removed, chunks embedded, files skipped, seconds."
    )


class SearchResponse(BaseModel):
    query: str
    workspace: str
    mode: str = Field(description="The ranking used (`bm25` when the index has no vectors).")
    took_ms: float
    index: IndexState
    hits: list[SearchHitPublic]


@router.post(
    "/search",
    summary="Search a workspace's code by keywords and meaning",
    response_model=SearchResponse,
)
async def search(
    body: SearchRequest, caller: CallerDep, chief: ChiefDep, settings: SettingsDep
) -> dict[str, Any]:
    """The chunks of the workspace (functions, classes, document sections) that best answer
    the query, from the caller's owner's index of it, each with its rankings and why it
    matched. The first search of a workspace indexes it; later ones see changed files
    within `knowledge.search_refresh_seconds`, or at once with `refresh: now`."""
    workspace = check_workspace(body.workspace, settings)
    # A field the search refuses is a 422 naming it in the body (the app's error handler).
    result = await chief.search(
        workspace or body.workspace,
        body.query,
        owner=caller.owner,
        k=body.k,
        mode=body.mode,
        glob=body.glob,
        refresh=body.refresh,
    )
    return result.as_dict()
