"""Feedback in the app database: the gateway's answers by id, and ratings of operations,
tasks and answers.

Every gateway chat completion is kept as one ``gateway_responses`` row (its
``x_crewchief.id``), written in the background by the store's grouped writer so the
request does not wait for it. A rating names its target, is one per owner and target (a
second one replaces the first), and carries the dimensions of its target when it was
given (see :mod:`crewchief.db._feedback_targets`).

A rating's ``owner`` is the rater's API key owner, ``""`` for calls without a key (as
profiles store it), so the one-rating rule holds for them too.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from crewchief.db._feedback_targets import Target, resolve
from crewchief.db.conversations import digest
from crewchief.db.models import utcnow
from crewchief.db.profiles import owner_key
from crewchief.db.repository import ANY_OWNER, period_sql
from crewchief.db.writer import Tx, Writer
from crewchief.results import FeedbackRecord, FeedbackSaved

log = logging.getLogger(__name__)


def response_id() -> str:
    """A new gateway response id: ``resp_`` and 24 hex digits."""
    return "resp_" + secrets.token_hex(12)


def prompt_digest(messages: list[Any]) -> str:
    """The identity of a prompt: the digest of each message (role, content, tool calls)."""
    parts = [digest(m) if isinstance(m, dict) else digest({"content": m}) for m in messages]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class ResponseRecord:
    """One gateway answer, as :class:`ResponseLog` keeps it."""

    id: str
    owner: str | None
    api_key_id: str | None
    role: str
    model: str | None
    auto_tier: str | None
    simplicity_score: float | None
    cache: str
    conversation_id: str | None
    messages: list[Any]  # as the client sent them
    answer: str | None
    # For the request log: how the request went.
    stream: bool | None = None
    latency_ms: float | None = None  # from the request's arrival to its answer
    fallbacks: list[dict[str, Any]] = field(default_factory=list)  # failed attempts first
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None


QUESTION_CHARS = 200


def question_preview(messages: list[Any]) -> str | None:
    """The start of the last user message's text (at most :data:`QUESTION_CHARS`), or None."""
    for message in reversed(messages):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):  # parts: the text ones
            content = " ".join(
                p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
        text = " ".join(content.split()) if isinstance(content, str) else ""
        return text[:QUESTION_CHARS] or None
    return None


_RESPONSE_FIELDS = (
    "id, owner, api_key_id, role, model, auto_tier, simplicity_score, cache, conversation_id,"
    " prompt_digest, messages, answer, stream, latency_ms, fallbacks, input_tokens,"
    " output_tokens, cost_usd, question, created_at"
)
_INSERT_RESPONSE = (
    f"INSERT INTO gateway_responses ({_RESPONSE_FIELDS}) VALUES"
    f" ({', '.join(':' + f.strip() for f in _RESPONSE_FIELDS.split(','))})"
)


def _insert_response(tx: Tx, record: ResponseRecord, created: datetime) -> None:
    params = {
        **{f: getattr(record, f) for f in ResponseRecord.__slots__},
        "prompt_digest": prompt_digest(record.messages),
        "messages": tx.json(record.messages),
        "stream": None if record.stream is None else tx.flag(record.stream),
        "fallbacks": tx.json(record.fallbacks),
        "question": question_preview(record.messages),
        "created_at": tx.ts(created),
    }
    tx.execute(_INSERT_RESPONSE, params)


class ResponseLog:
    """Keeps the gateway's answers, off the request's path: :meth:`keep` only queues the
    record; one background task at a time writes what is queued in one transaction, which
    the store commits with the other writes waiting at that moment (group commit). The
    hashing and the JSON happen on the store's thread."""

    def __init__(self, store: Writer):
        self._store = store
        self._queue: list[tuple[ResponseRecord, datetime]] = []
        self._writing: asyncio.Task[None] | None = None

    def keep(self, record: ResponseRecord) -> None:
        """Write ``record`` in the background (a failure is logged, never raised)."""
        self._queue.append((record, utcnow()))
        if self._writing is None:
            self._writing = asyncio.get_running_loop().create_task(self._write())

    async def _write(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    await self._store.run_grouped(
                        lambda tx, batch=batch: [_insert_response(tx, *item) for item in batch]
                    )
                except Exception:  # noqa: BLE001 - the answers went out; only ratings are lost
                    ids = ", ".join(record.id for record, _ in batch)
                    log.exception("keeping gateway responses failed: %s", ids)
        finally:
            self._writing = None

    async def settle(self) -> None:
        """Wait for the answers being kept (before a rating, an export, forgetting, shutdown)."""
        while self._writing is not None:
            await asyncio.wait([self._writing])


@dataclass(frozen=True, slots=True)
class Rating:
    """A checked rating: ``kind`` thumb (value 1 up, 0 down) or stars (1-5)."""

    kind: str
    value: int
    correction: str | None = None
    comment: str | None = None

    @property
    def score(self) -> float:
        """In 0..1: up 1, down 0, stars (n - 1) / 4."""
        return float(self.value) if self.kind == "thumb" else (self.value - 1) / 4


_COLUMNS = (
    "id, target_kind, operation_id, task_sequence, task_version, response_id, rating_kind,"
    " rating, score, correction, comment, role, model, skill, route, tier, simplicity_score,"
    " owner, api_key_id, created_at, updated_at"
)
_DIMENSIONS = (
    "operation_id", "task_sequence", "task_version", "response_id",
    "role", "model", "skill", "route", "tier", "simplicity_score",
)  # fmt: skip
_UPSERT = (
    f"INSERT INTO feedback (id, owner, api_key_id, target_kind, target_id, {', '.join(_DIMENSIONS)},"
    " rating_kind, rating, score, correction, comment, created_at, updated_at) VALUES (:id,"
    f" :owner, :api_key_id, :target_kind, :target_id, {', '.join(':' + d for d in _DIMENSIONS)},"
    " :rating_kind, :rating, :score, :correction, :comment, :now, :now)"
    " ON CONFLICT (owner, target_kind, target_id) DO UPDATE SET api_key_id = :api_key_id,"
    f" {', '.join(f'{d} = :{d}' for d in _DIMENSIONS)}, rating_kind = :rating_kind,"
    " rating = :rating, score = :score, correction = :correction, comment = :comment,"
    " updated_at = :now"
)


def _record(tx: Tx, r: tuple[Any, ...]) -> FeedbackRecord:
    kind, value = r[6], r[7]
    return FeedbackRecord(
        id=r[0],
        target=r[1],
        operation_id=r[2],
        task=r[3],
        task_version=r[4],
        response_id=r[5],
        thumb=("up" if value else "down") if kind == "thumb" else None,
        stars=value if kind == "stars" else None,
        score=r[8],
        correction=r[9],
        comment=r[10],
        role=r[11],
        model=r[12],
        skill=r[13],
        route=r[14],
        tier=r[15],
        simplicity_score=r[16],
        owner=r[17] or None,
        api_key_id=r[18],
        created_at=tx.parse_ts(r[19]),
        updated_at=tx.parse_ts(r[20]),
    )


async def rate(
    store: Writer,
    target: Target,
    rating: Rating,
    *,
    scope: Any = ANY_OWNER,
    owner: str | None = None,
    api_key_id: str | None = None,
) -> FeedbackSaved:
    """Store ``owner``'s rating of ``target`` (replacing their earlier one), with the
    target's dimensions as they are now.

    Args:
        scope: The owner whose targets may be rated (every owner's by default).

    Raises:
        OperationNotFound, TaskNotFound, ResponseNotFound: unknown, or not ``scope``'s.
        OperationStateError: the operation or task has not ended.
    """

    def work(tx: Tx) -> FeedbackSaved:
        found = resolve(tx, target, scope, api_key_id)
        key = {"owner": owner_key(owner), "kind": target.kind, "tid": found["target_id"]}
        where = "owner = :owner AND target_kind = :kind AND target_id = :tid"
        before = tx.one(f"SELECT id FROM feedback WHERE {where}", key)
        params = {
            **dict.fromkeys(_DIMENSIONS),
            **found,
            "id": before[0] if before else "fb_" + secrets.token_hex(8),
            "owner": key["owner"],
            "api_key_id": api_key_id,
            "target_kind": target.kind,
            "rating_kind": rating.kind,
            "rating": rating.value,
            "score": rating.score,
            "correction": rating.correction,
            "comment": rating.comment,
            "now": tx.ts(utcnow()),
        }
        tx.execute(_UPSERT, params)
        row = tx.one(f"SELECT {_COLUMNS} FROM feedback WHERE {where}", key)
        assert row is not None
        return FeedbackSaved(**_record(tx, row).model_dump(), replaced=before is not None)

    return await store.run(work)


def scope_sql(owner: Any, params: dict[str, Any], column: str = "owner") -> str:
    """A condition limiting feedback rows to ``owner``'s (``1 = 1`` for every owner)."""
    if owner is ANY_OWNER:
        return "1 = 1"
    params["owner"] = owner_key(owner)
    return f"{column} = :owner"


async def list_feedback(
    store: Writer,
    *,
    owner: Any = ANY_OWNER,
    kind: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
) -> list[FeedbackRecord]:
    """Ratings newest first (by when they were last given), ``owner``'s or everyone's."""

    def work(tx: Tx) -> list[FeedbackRecord]:
        params: dict[str, Any] = {"kind": kind, "limit": limit}
        where = [scope_sql(owner, params), period_sql(tx, since, until, params, "updated_at")]
        if kind is not None:
            where.append("target_kind = :kind")
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM feedback WHERE {' AND '.join(where)}"
            " ORDER BY updated_at DESC, id DESC LIMIT :limit",
            params,
        ).fetchall()
        return [_record(tx, r) for r in rows]

    return await store.read(work)


async def forget(store: Writer, owner: str | None) -> dict[str, int]:
    """Delete ``owner``'s gateway responses, the ratings of them and the ratings ``owner``
    gave; how many of each there were."""

    def work(tx: Tx) -> dict[str, int]:
        params = {"owner": owner, "key": owner_key(owner)}
        mine = "owner IS NULL" if owner is None else "owner = :owner"
        rated = tx.execute(
            "DELETE FROM feedback WHERE owner = :key OR response_id IN"
            f" (SELECT id FROM gateway_responses WHERE {mine})",  # noqa: S608 - no input in the SQL text
            params,
        ).rowcount
        kept = tx.execute(f"DELETE FROM gateway_responses WHERE {mine}", params).rowcount  # noqa: S608
        return {"gateway_responses": kept, "feedback": rated}

    return await store.run(work)
