"""The workspace a node's tools work in, with the owner's hybrid code search behind
``search_code`` (and the planner's ``search_codebase``)."""

from __future__ import annotations

from pathlib import Path

from crewchief.knowledge.search import SearchError, code_search
from crewchief.runtime.deps import NodeDeps
from crewchief.tools.workspace import CodeSearcher, ToolError, Workspace


def open_workspace(deps: NodeDeps, root: str | Path, owner: str | None) -> Workspace:
    """The workspace at ``root`` (blocking: call it in a thread).

    Raises:
        ToolError: ``root`` is not a directory.
    """
    return Workspace.open(root, searcher=searcher(deps, Path(root), owner))


def searcher(deps: NodeDeps, root: Path, owner: str | None) -> CodeSearcher | None:
    """What answers ``search_code`` in ``root`` for ``owner`` (None: code search is off)."""
    if not deps.settings.knowledge.code_search:
        return None
    search = code_search(deps.settings, deps.services.vectors)

    def run(query: str, k: int, glob: str | None) -> str:
        try:
            return search.search(owner, root, query, k=k, glob=glob).render()
        except SearchError as exc:
            raise ToolError(f"search_code: {exc}") from None

    return run


def warm(deps: NodeDeps, root: str | None, owner: str | None) -> None:
    """Start indexing ``root`` in the background, so the first search finds it ready."""
    if root and deps.settings.knowledge.code_search and Path(root).is_dir():
        code_search(deps.settings, deps.services.vectors).warm(owner, root)
