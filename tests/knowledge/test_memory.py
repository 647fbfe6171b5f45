"""The conversation memory is best effort: a vector store that does not answer costs the
request its recalled history, never the request itself."""

from __future__ import annotations

from pathlib import Path

from crewchief.knowledge.embeddings import LocalEmbeddings
from crewchief.knowledge.memory import ConversationMemory
from crewchief.knowledge.store import VectorStore
from tests.conftest import make_settings
from tests.knowledge._chroma import free_port


async def test_a_recall_without_a_reachable_chroma_server_finds_nothing_and_does_not_fail(
    tmp_path: Path,
) -> None:
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    settings = make_settings(tmp_path / "home", knowledge={"chroma_url": url})
    memory = ConversationMemory(VectorStore(settings, LocalEmbeddings(), "memory"))
    recalled = await memory.recall("alice", "how do we deploy on Fridays?")
    assert recalled.hits == [] and recalled.ms >= 0
