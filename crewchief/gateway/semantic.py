"""The gateway's semantic cache: a request that means the same as an earlier one of the
same owner gets that one's answer, after the exact cache missed.

Only single-turn, tool-free requests take part: system messages and one user message of
text, no ``tools``, ``tool_choice``, ``response_format`` or ``n`` above 1, and only when
the exact cache may keep them (deterministic, or opted in). An entry is the user message,
embedded, with the answer in its metadata. A lookup takes the owner's few most similar
entries with the same role, the same first model, the same system prompt and the same
sampling parameters (hashed), not expired and similar by at least
``gateway.semantic_threshold``, and answers with the first whose critical terms agree with
the request's (:mod:`crewchief.gateway._critical_terms`: numbers, names, code, negations,
opposite words ...): embeddings alone put "add a column" next to "drop a column". A request
whose terms cannot be checked (not English) is neither looked up nor kept.

The threshold is chosen on the calibration half of a labelled set of paraphrases and near
misses (``crewchief/knowledge/data/semantic_pairs.jsonl``) as the lowest at which hits are
right at least 99 % of the time, and checked on the other half: ``python -m
bench.semantic_cache``.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from crewchief.gateway._critical_terms import conflict, terms_of
from crewchief.knowledge.store import Hit, VectorStore

log = logging.getLogger(__name__)

_SYSTEM = ("system", "developer")
_NOT_PARAMS = ("messages", "stream", "stream_options", "user", "model")
_CHANGES_THE_ANSWER = ("tools", "tool_choice", "response_format", "functions", "function_call")
MAX_CHARS = 4000  # a longer request is not looked up (nor kept)
# Entries looked at per lookup, most similar first: the nearest may be a near miss that the
# critical terms refuse while the next one is a paraphrase.
CANDIDATES = 4
PENDING_WAIT_S = 2.0  # the longest a lookup waits for answers being kept


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


@dataclass(frozen=True, slots=True)
class NearMiss:
    """The most similar entry above the threshold, refused because a critical term differs."""

    similarity: float
    reason: str


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
        self._owners: dict[asyncio.Task[None], str | None] = {}  # whose answer each keeps

    async def get(self, owner: str | None, lookup: Lookup) -> SemanticHit | NearMiss | None:
        """The answer of the most similar entry whose critical terms agree; else the best
        entry the critical terms refused (nothing is served from it), or None.

        Answers still being kept are waited for first (briefly): a request sent right after
        an answer went out finds it, even on a loaded machine."""
        mine = [task for task, who in list(self._owners.items()) if who == owner]
        if mine:
            await asyncio.wait(mine, timeout=PENDING_WAIT_S)
        try:
            return await asyncio.to_thread(self._find, owner, lookup)
        except Exception:  # noqa: BLE001 - a miss, not a failed request
            log.exception("semantic cache lookup failed")
            return None

    def _find(self, owner: str | None, lookup: Lookup) -> SemanticHit | NearMiss | None:
        terms = terms_of(lookup.text)
        if not terms.english:
            return None
        where = {
            "role": lookup.role,
            "model": lookup.model,
            "system": lookup.system,
            "params": lookup.params,
            "expires": {"$gt": time.time()},
        }
        hits = self.store.search(
            owner, lookup.text, k=CANDIDATES, floor=self.threshold, where=where
        )
        near: NearMiss | None = None
        for hit in hits:
            refused = conflict(terms, terms_of(hit.text))
            if refused is not None:
                log.debug("semantic cache: %.3f similar but refused (%s)", hit.score, refused)
                near = near or NearMiss(hit.score, str(refused))
                continue
            found = _answer(hit)
            if found is not None:
                return found
        return near

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

        def keep() -> None:
            if terms_of(lookup.text).english:  # others are never looked up
                self.store.add(owner, [lookup.text], metadatas=[meta])

        async def run() -> None:
            try:
                await asyncio.to_thread(keep)
            except Exception:  # noqa: BLE001 - the answer went out; the cache is best effort
                log.exception("could not keep an answer in the semantic cache")

        task = asyncio.get_running_loop().create_task(run())
        self._pending.add(task)
        self._owners[task] = owner
        task.add_done_callback(self._forget_task)

    def _forget_task(self, task: asyncio.Task[None]) -> None:
        self._pending.discard(task)
        self._owners.pop(task, None)

    async def settle(self) -> None:
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)


def _answer(hit: Hit) -> SemanticHit | None:
    try:
        answer = json.loads(hit.metadata["answer"])
    except (KeyError, ValueError):
        return None
    return SemanticHit(answer, str(hit.metadata.get("answer_model", "")), hit.score, hit.text)
