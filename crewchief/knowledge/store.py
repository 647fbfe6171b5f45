"""Vectors kept per owner, on ``langchain-chroma``.

Embedded mode keeps an embedded, persistent Chroma under the crewchief home
(``<home>/chroma``); scaled mode points every process at one Chroma server
(``knowledge.chroma_url``, e.g. ``chroma run --path DIR --port 8001``). Collections use
cosine distance, so a hit's score is its cosine similarity.

Every entry is stamped with its owner (the API key owner; ``-`` for a caller without one),
and every search and deletion filters by it: one owner never retrieves another's entries.
Embeddings are always crewchief's own (``knowledge.embeddings``), never Chroma's default,
which would download a model. Chroma is imported on first use.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from langchain_core.embeddings import Embeddings

from crewchief.config import Settings
from crewchief.knowledge._imports import heavy

ANONYMOUS = "-"  # the owner of entries made without an API key (no-auth mode)
MAX_BATCH = 1000  # Chroma refuses batches over its limit (5,461 today); langchain does not split


def owner_key(owner: str | None) -> str:
    return owner or ANONYMOUS


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result: the entry's text, its cosine similarity to the query, its
    metadata (owner included) and id."""

    text: str
    score: float
    metadata: dict[str, Any]
    id: str


def _client(settings: Settings) -> Any:
    """A Chroma client: the server at ``knowledge.chroma_url``, else embedded under the home."""
    chromadb = heavy("chromadb")
    chroma_settings = heavy("chromadb.config").Settings(anonymized_telemetry=False)
    url = settings.knowledge.chroma_url
    if url:
        parts = urlsplit(url)
        return chromadb.HttpClient(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (443 if parts.scheme == "https" else 8000),
            ssl=parts.scheme == "https",
            settings=chroma_settings,
        )
    path = Path(settings.home) / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=chroma_settings)


_CLIENTS: dict[tuple[str, str], Any] = {}
_CLIENTS_LOCK = threading.Lock()


def shared_client(settings: Settings) -> Any:
    """One client per place per process (Chroma's embedded client must not be opened twice
    on the same directory)."""
    key = (settings.knowledge.chroma_url or "", str(Path(settings.home) / "chroma"))
    with _CLIENTS_LOCK:
        if key not in _CLIENTS:
            _CLIENTS[key] = _client(settings)
        return _CLIENTS[key]


class VectorStore:
    """One Chroma collection whose entries belong to owners.

    Args:
        settings: Where Chroma is (``knowledge.chroma_url`` or the home).
        embeddings: What turns texts into vectors.
        collection: The collection's name (3-512 characters of ``[a-zA-Z0-9._-]``).
    """

    def __init__(self, settings: Settings, embeddings: Embeddings, collection: str):
        self.settings = settings
        self.embeddings = embeddings
        self.collection = collection
        self._store: Any = None
        self._raw: Any = None  # the chromadb collection behind self._store
        self._lock = threading.Lock()

    def _chroma(self) -> Any:
        with self._lock:
            if self._store is None:
                self._store = heavy("langchain_chroma").Chroma(
                    collection_name=self.collection,
                    embedding_function=self.embeddings,
                    client=shared_client(self.settings),
                    collection_metadata={"hnsw:space": "cosine"},
                )
            return self._store

    def add(
        self,
        owner: str | None,
        texts: Sequence[str],
        metadatas: Sequence[dict[str, Any]] | None = None,
        ids: Sequence[str] | None = None,
    ) -> list[str]:
        """Store ``texts`` as ``owner``'s (an existing id is replaced); their ids."""
        if not texts:
            return []
        ids = list(ids) if ids is not None else [uuid.uuid4().hex for _ in texts]
        metas = [
            {**(m or {}), "owner": owner_key(owner)}
            for m in (metadatas if metadatas is not None else [{}] * len(texts))
        ]
        store = self._chroma()
        for start in range(0, len(texts), MAX_BATCH):
            end = start + MAX_BATCH
            store.add_texts(list(texts[start:end]), metadatas=metas[start:end], ids=ids[start:end])
        return ids

    def search(
        self,
        owner: str | None,
        query: str,
        k: int = 3,
        floor: float = 0.0,
        where: dict[str, Any] | None = None,
    ) -> list[Hit]:
        """``owner``'s ``k`` entries most similar to ``query`` with a similarity of at
        least ``floor``, best first (``where``: more metadata conditions)."""
        condition: dict[str, Any] = {"owner": owner_key(owner)}
        if where:
            condition = {"$and": [condition, *({key: v} for key, v in where.items())]}
        vector = self.embeddings.embed_query(query)
        found = self._chroma().similarity_search_by_vector_with_relevance_scores(
            vector, k=k, filter=condition
        )
        hits = []
        for doc, distance in found:  # cosine distance: 1 - similarity
            score = 1.0 - float(distance)
            if score >= floor:
                hits.append(Hit(doc.page_content, score, dict(doc.metadata), str(doc.id)))
        return hits

    def delete_owner(self, owner: str | None, where: dict[str, Any] | None = None) -> int:
        """Delete every entry of ``owner`` (matching ``where`` too, when given), vectors
        included; how many there were."""
        condition: dict[str, Any] = {"owner": owner_key(owner)}
        if where:
            condition = {"$and": [condition, *({key: v} for key, v in where.items())]}
        store = self._chroma()
        ids = store.get(where=condition, include=[])["ids"]
        if ids:
            store.delete(ids=ids)
        return len(ids)

    def nearest(self, query: str, k: int) -> list[tuple[str, float]]:
        """The ids of the ``k`` entries most similar to ``query`` and their similarities,
        best first, whoever owns them: only for a collection that holds one owner's entries
        (a workspace's code index), where the collection itself is the owner's boundary and
        Chroma's metadata filter, which costs tens of milliseconds at 10,000 entries, is
        not needed."""
        if k <= 0:
            return []
        vector = self.embeddings.embed_query(query)
        # Chroma returns fewer than n_results when the collection holds fewer.
        found = self._collection().query(
            query_embeddings=[vector], n_results=k, include=["distances"]
        )
        return [
            (str(i), 1.0 - float(d))
            for i, d in zip(found["ids"][0], found["distances"][0], strict=True)
        ]

    def delete_ids(self, ids: Sequence[str]) -> None:
        """Delete the entries ``ids`` (vectors included); unknown ids are ignored."""
        store = self._chroma()
        for start in range(0, len(ids), MAX_BATCH):
            store.delete(ids=list(ids[start : start + MAX_BATCH]))

    def ids(self) -> set[str]:
        """The ids of every entry of the collection, all owners together."""
        return set(self._collection().get(include=[])["ids"])

    def size(self) -> int:
        """How many entries the collection holds, all owners together."""
        return int(self._collection().count())

    def drop(self) -> None:
        """Delete the whole collection, vectors included."""
        self._chroma().delete_collection()
        with self._lock:
            self._store = self._raw = None

    def _collection(self) -> Any:
        """The Chroma collection itself (Chroma's own API, for what LangChain's lacks)."""
        if self._raw is None:
            self._chroma()  # creates it, with cosine distance, when it does not exist yet
            self._raw = shared_client(self.settings).get_collection(self.collection)
        return self._raw

    def count(self, owner: str | None) -> int:
        got = self._chroma().get(where={"owner": owner_key(owner)}, include=[])
        return len(got["ids"])

    def entries(self, owner: str | None, limit: int | None = None) -> list[Hit]:
        """``owner``'s entries (at most ``limit``, in no particular order), each with its
        text, metadata and id (and a score of 1)."""
        got = self._chroma().get(
            where={"owner": owner_key(owner)}, include=["documents", "metadatas"], limit=limit
        )
        rows = zip(got["ids"], got["documents"], got["metadatas"], strict=True)
        return [Hit(text or "", 1.0, dict(meta or {}), str(id_)) for id_, text, meta in rows]

    # Async views: Chroma and the embedding model are synchronous; run them off the loop.
    async def aadd(self, owner: str | None, texts: Sequence[str], **kwargs: Any) -> list[str]:
        return await asyncio.to_thread(self.add, owner, texts, **kwargs)

    async def asearch(self, owner: str | None, query: str, **kwargs: Any) -> list[Hit]:
        return await asyncio.to_thread(self.search, owner, query, **kwargs)

    async def adelete_owner(self, owner: str | None, **kwargs: Any) -> int:
        return await asyncio.to_thread(self.delete_owner, owner, **kwargs)

    async def aentries(self, owner: str | None, limit: int | None = None) -> list[Hit]:
        return await asyncio.to_thread(self.entries, owner, limit)
