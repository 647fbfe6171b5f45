"""The semantic cache on a real vector store and the shipped embeddings: a near miss that is
similar enough is refused by its critical terms, and a paraphrase behind it answers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from crewchief.gateway.semantic import Lookup, NearMiss, SemanticCache, lookup_of
from crewchief.knowledge.embeddings import LocalEmbeddings
from crewchief.knowledge.store import VectorStore
from tests.conftest import make_settings

MODEL = "fake:default"
# Low enough for the near misses below to reach the guard: the similarity alone lets them in.
THRESHOLD = 0.7


def lookup(text: str) -> Lookup:
    body = {"messages": [{"role": "user", "content": text}], "temperature": 0}
    found = lookup_of(body, "general", MODEL)
    assert found is not None
    return found


def answer(text: str) -> dict[str, Any]:
    return {"choices": [{"message": {"role": "assistant", "content": text}}]}


@pytest.fixture
def store(tmp_path: Path) -> VectorStore:
    return VectorStore(make_settings(tmp_path / "home"), LocalEmbeddings(), "semantic_cache")


async def test_a_near_miss_is_never_served_and_a_paraphrase_behind_it_is(
    store: VectorStore,
) -> None:
    cache = SemanticCache(store, THRESHOLD, ttl=60)
    disable = "How do I disable strict mode in TypeScript?"
    enable = "Enable strict mode in a TypeScript project"
    cache.put_later("alice", lookup(disable), answer("set strict to false"), MODEL)
    cache.put_later("alice", lookup(enable), answer("set strict to true"), MODEL)
    await cache.settle()
    asked = "How do I enable strict mode in TypeScript?"
    nearest = store.search("alice", asked, k=2, floor=THRESHOLD)
    assert [h.text for h in nearest] == [disable, enable]  # the near miss is the closer one
    hit = await cache.get("alice", lookup(asked))
    assert hit is not None and hit.answer == answer("set strict to true")
    assert hit.cached_request == enable and hit.similarity == pytest.approx(nearest[1].score)
    # Only near misses in reach: nothing is served, and the nearest one's refusal is said.
    refused = await cache.get("alice", lookup("How do I disable strict mode in JavaScript?"))
    assert isinstance(refused, NearMiss) and refused.similarity >= THRESHOLD
    assert "typescript" in refused.reason.lower() or "javascript" in refused.reason.lower()
    assert await cache.get("bob", lookup(asked)) is None  # another owner's entries


async def test_a_request_whose_terms_cannot_be_checked_is_neither_kept_nor_looked_up(
    store: VectorStore,
) -> None:
    cache = SemanticCache(store, THRESHOLD, ttl=60)
    german = "Wie lösche ich einen lokalen Branch in git?"
    cache.put_later("alice", lookup(german), answer("git branch -d NAME"), MODEL)
    cache.put_later("alice", lookup("How do I delete a local git branch?"), answer("-d"), MODEL)
    await cache.settle()
    assert store.count("alice") == 1
    assert await cache.get("alice", lookup(german)) is None
