"""Where a process gets its owner-scoped vector collections, all with one embeddings model.

One rule decides whether vectors are kept at all: in scaled mode (``executor = "queue"``)
only on a Chroma server every process shares (``knowledge.chroma_url``), since each process
would otherwise answer from vectors of its own; and nowhere when the ``embeddings`` model
cannot be had here. Nothing loads until a collection is first used.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from crewchief.config import Settings
from crewchief.errors import ModelConfigError, ModelRequestsBlocked

if TYPE_CHECKING:
    from crewchief.knowledge.store import VectorStore

log = logging.getLogger(__name__)


class VectorStores:
    """Owner-scoped collections of one process (see :class:`~crewchief.knowledge.store.VectorStore`).

    Args:
        settings: Where Chroma is, the mode, and the ``embeddings`` model.
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self._embeddings: Any = None
        self._lock = threading.Lock()
        self._warned = False

    def get(self, collection: str) -> VectorStore | None:
        """The collection ``collection``, or None where vectors are not kept (logged once)."""
        settings = self.settings
        if settings.executor == "queue" and not settings.knowledge.chroma_url:
            self._warn("vector stores off: scaled mode needs knowledge.chroma_url")
            return None
        with self._lock:
            if self._embeddings is None:
                from crewchief.knowledge.embeddings import build_embeddings

                try:
                    self._embeddings = build_embeddings(settings)
                except (ModelConfigError, ModelRequestsBlocked) as exc:
                    self._warn(f"vector stores off: {exc}")
                    return None
        from crewchief.knowledge.store import VectorStore

        return VectorStore(settings, self._embeddings, collection)

    def _warn(self, message: str) -> None:
        if not self._warned:
            log.warning("%s", message)
            self._warned = True
