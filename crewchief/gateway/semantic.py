"""The gateway's semantic cache: a request that means the same as an earlier one of the
same owner gets that one's answer, after the exact cache missed.

Only single-turn, tool-free requests take part: system messages and one user message of
text, no ``tools``, ``tool_choice``, ``response_format`` or ``n`` above 1, and only when
the exact cache may keep them (deterministic, or opted in). An entry is the user message,
embedded, with the answer in its metadata; a lookup takes the owner's most similar entry
with the same role, the same first model, the same system prompt and the same sampling
parameters (hashed), not expired, and similar by at least ``gateway.semantic_threshold``.
The threshold was chosen on a labelled set of paraphrases and near misses
(``crewchief/knowledge/data/semantic_pairs.jsonl``; ``python -m bench.semantic_cache``)
for hits that are right at least 99 % of the time there.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from crewchief.knowledge.store import VectorStore

log = logging.getLogger(__name__)

_SYSTEM = ("system", "developer")
_NOT_PARAMS = ("messages", "stream", "stream_options", "user", "model")
_CHANGES_THE_ANSWER = ("tools", "tool_choice", "response_format", "functions", "function_call")
MAX_CHARS = 4000  # a longer request is not looked up (nor kept)


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a request is matched on: its user text and the hashes of everything else."""

    text: str
    role: str
    model: str
    system: str
    params: str


def lookup_of(body: dict[str, Any], role: str, model: str) -> Lookup | None:
    """The request's lookup when it may use the semantic cache, else None."""
    if any(body.get(k) for k in _CHANGES_THE_ANSWER) or body.get("n", 1) != 1:
        return None
    messages = body["messages"]
    systems = [m for m in messages if m.get("role") in _SYSTEM]
    users = [m for m in messages if m.get("role") not in _SYSTEM]
    if len(users) != 1 or users[0].get("role") != "user" or messages[-1] is not users[0]:
        return None
    text = users[0].get("content")
    if not isinstance(text, str) or not text.strip() or len(text) > MAX_CHARS:
        return None
    system = json.dumps([m.get("content") for m in systems], sort_keys=True, default=str)
    params = {k: v for k, v in body.items() if k not in _NOT_PARAMS}
    params_text = json.dumps(params, sort_keys=True, default=str)
    return Lookup(text, role, model, _hash(system), _hash(params_text))


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class SemanticHit:
    answer: dict[str, Any]
    model: str
    similarity: float
    cached_request: str


class SemanticCache:
    """Answers of earlier requests, found by meaning (see the module's description).

    Args:
        store: The vector store collection (owner-scoped).
        threshold: The least cosine similarity of a hit.
        ttl: Seconds an entry lives.
    """

    def __init__(self, store: VectorStore, threshold: float, ttl: float):
        self.store, self.threshold, self.ttl = store, threshold, ttl
        self._pending: set[asyncio.Task[None]] = set()

    async def get(self, owner: str | None, lookup: Lookup) -> SemanticHit | None:
        where = {
            "role": lookup.role,
            "model": lookup.model,
            "system": lookup.system,
            "params": lookup.params,
            "expires": {"$gt": time.time()},
        }
        try:
            hits = await self.store.asearch(
                owner, lookup.text, k=1, floor=self.threshold, where=where
            )
        except Exception:  # noqa: BLE001 - a miss, not a failed request
            log.exception("semantic cache lookup failed")
            return None
        if not hits:
            return None
        hit = hits[0]
        try:
            answer = json.loads(hit.metadata["answer"])
        except (KeyError, ValueError):
            return None
        return SemanticHit(answer, str(hit.metadata.get("answer_model", "")), hit.score, hit.text)

    def put_later(
        self, owner: str | None, lookup: Lookup, answer: dict[str, Any], model: str
    ) -> None:
        """Keep ``answer`` for ``lookup`` in the background (a failure is logged)."""
        meta = {
            "role": lookup.role,
            "model": lookup.model,
            "system": lookup.system,
            "params": lookup.params,
            "expires": time.time() + self.ttl,
            "answer": json.dumps(answer),
            "answer_model": model,
        }

        async def run() -> None:
            try:
                await self.store.aadd(owner, [lookup.text], metadatas=[meta])
            except Exception:  # noqa: BLE001 - the answer went out; the cache is best effort
                log.exception("could not keep an answer in the semantic cache")

        task = asyncio.get_running_loop().create_task(run())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def settle(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)
