"""Preference pairs for DPO from what the app database holds (``crewchief feedback export``).

Each pair is ``{"prompt", "chosen", "rejected", "source", "meta"}``. ``prompt`` is always a
list of OpenAI chat messages: the messages a gateway client sent, or one user message for
an operation's request or a task. ``chosen`` and ``rejected`` are the answers' texts. Three
sources (docs/feedback.md):

- ``correction``: a rating with a correction: chosen the correction, rejected what was
  rated (the operation's answer, the task version's result, the response's answer);
- ``task_rerun``: a task run again: the current (kept) version's result chosen over each
  replaced version's, unless their ratings say the opposite (an unrated version counts as
  neutral, 3 stars). The prompt is the kept version's task as its executor was given it
  (request, task, instructions), since that is what the kept answer answers;
  ``meta.prompt_changed`` says whether the rerun changed the description or instructions;
- ``regenerated``: one owner's equal prompts (same digest) answered differently: the one
  rated higher is chosen, else the one the owner's conversation went on from (a later
  request carries it as an assistant message), else there is no evidence and no pair.

Pairs whose two texts are equal or either is empty are left out.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from itertools import combinations
from typing import Any

from crewchief import prompts
from crewchief.db.feedback import period_sql, scope_sql
from crewchief.db.repository import ANY_OWNER
from crewchief.db.writer import Tx, Writer

NEUTRAL = 0.5  # the score of an unrated answer, when the other one is rated


def _owned(owner: Any, params: dict[str, Any], column: str) -> str:
    """``column`` (an operation's or response's owner, NULL without a key) is ``owner``'s."""
    if owner is ANY_OWNER:
        return "1 = 1"
    if owner is None:
        return f"{column} IS NULL"
    params["row_owner"] = owner
    return f"{column} = :row_owner"


def user_prompt(text: str) -> list[dict[str, Any]]:
    return [{"role": "user", "content": text}]


def task_prompt(request: str, description: str, instructions: str | None) -> str:
    """A task as its executor's prompt states it (without workspace files and the results
    of the tasks it depends on)."""
    text = f"{prompts.REQUEST_MARKER}\n{request}\n\n{prompts.TASK_MARKER}\n{description}"
    if instructions:
        text += prompts.TASK_INSTRUCTIONS.format(instructions=instructions)
    return text


def _pair(prompt: Any, chosen: Any, rejected: Any, source: str, **meta: Any) -> dict | None:
    if not prompt or not isinstance(chosen, str) or not isinstance(rejected, str):
        return None
    if not chosen.strip() or not rejected.strip() or chosen.strip() == rejected.strip():
        return None
    meta = {k: v for k, v in meta.items() if v is not None}
    return {
        "prompt": prompt,
        "chosen": chosen,
        "rejected": rejected,
        "source": source,
        "meta": meta,
    }


def prefer(a: float | None, b: float | None, a_went_on: bool, b_went_on: bool) -> tuple[int, str]:
    """``(1, why)`` when ``a`` is preferred, ``(-1, why)`` when ``b`` is, ``(0, "")`` without
    evidence: the ratings first (``why`` = ``rating``; an unrated one counts as neutral when
    the other is rated), then which one the conversation went on from (``continuation``)."""
    if a is not None or b is not None:
        sa, sb = NEUTRAL if a is None else a, NEUTRAL if b is None else b
        if sa != sb:
            return (1 if sa > sb else -1), "rating"
    if a_went_on != b_went_on:
        return (1 if a_went_on else -1), "continuation"
    return 0, ""


# -- corrections ------------------------------------------------------------------------------


def _original(tx: Tx, kind: str, op: Any, seq: Any, version: Any, rid: Any) -> tuple[Any, Any]:
    """The prompt and the answer a correction corrects."""
    if kind == "operation":
        row = tx.one("SELECT request, answer FROM operations WHERE id = :op", {"op": op})
        return (user_prompt(row[0]), row[1]) if row else (None, None)
    if kind == "task":
        row = tx.one(
            "SELECT o.request, t.description, t.instructions, t.result FROM operation_tasks t"
            " JOIN operations o ON o.id = t.operation_id WHERE t.operation_id = :op"
            " AND t.sequence = :seq AND t.version = :v",
            {"op": op, "seq": seq, "v": version},
        )
        return (user_prompt(task_prompt(*row[:3])), row[3]) if row else (None, None)
    row = tx.one("SELECT messages, answer FROM gateway_responses WHERE id = :id", {"id": rid})
    return (tx.parse_json(row[0]), row[1]) if row else (None, None)


def _corrections(tx: Tx, owner: Any, since: Any, until: Any) -> list[dict]:
    params: dict[str, Any] = {}
    where = f"{scope_sql(owner, params)} AND {period_sql(tx, since, until, params, 'updated_at')}"
    rows = tx.execute(
        "SELECT id, target_kind, operation_id, task_sequence, task_version, response_id,"
        f" correction FROM feedback WHERE {where} AND correction IS NOT NULL"
        " ORDER BY updated_at, id",
        params,
    ).fetchall()
    pairs = []
    for fid, kind, op, seq, version, rid, correction in rows:
        prompt, answer = _original(tx, kind, op, seq, version, rid)
        pair = _pair(
            prompt, correction, answer, "correction", target=kind, feedback_id=fid,
            operation_id=op, task=seq, task_version=version, response_id=rid,
        )  # fmt: skip
        if pair is not None:
            pairs.append(pair)
    return pairs


# -- task reruns ------------------------------------------------------------------------------


def _scores(tx: Tx, owner: Any, kind: str, columns: str) -> dict[tuple, float]:
    """The mean rating score of each target of ``kind``, keyed by ``columns``."""
    params: dict[str, Any] = {"kind": kind}
    rows = tx.execute(
        f"SELECT {columns}, AVG(score) FROM feedback WHERE {scope_sql(owner, params)}"
        f" AND target_kind = :kind GROUP BY {columns}",
        params,
    ).fetchall()
    return {tuple(r[:-1]): float(r[-1]) for r in rows}


@dataclass(frozen=True, slots=True)
class _Version:
    version: int
    current: bool
    status: str
    description: str
    instructions: str | None
    result: str | None
    completed_at: datetime | None


def _rerun_pairs(
    op: str, seq: int, request: str, versions: list[_Version], scores: dict[tuple, float]
) -> list[dict]:
    kept = next((v for v in versions if v.current), None)
    if kept is None or kept.status != "completed":
        return []
    prompt = user_prompt(task_prompt(request, kept.description, kept.instructions))
    pairs = []
    for old in (v for v in versions if not v.current):
        # The kept version wins unless the ratings say otherwise ("continuation" = kept).
        order, why = prefer(
            scores.get((op, seq, kept.version)), scores.get((op, seq, old.version)), True, False
        )
        chosen, rejected = (kept, old) if order > 0 else (old, kept)
        pair = _pair(
            prompt, chosen.result, rejected.result, "task_rerun", operation_id=op, task=seq,
            chosen_version=chosen.version, rejected_version=rejected.version,
            decided_by="rating" if why == "rating" else "rerun",
            prompt_changed=(old.description, old.instructions)
            != (kept.description, kept.instructions),
        )  # fmt: skip
        if pair is not None:
            pairs.append(pair)
    return pairs


def _reruns(tx: Tx, owner: Any, since: Any, until: Any) -> list[dict]:
    params: dict[str, Any] = {}
    rows = tx.execute(
        "SELECT t.operation_id, t.sequence, o.request, t.version, t.is_current, t.status,"
        " t.description, t.instructions, t.result, t.completed_at FROM operation_tasks t"
        f" JOIN operations o ON o.id = t.operation_id WHERE {_owned(owner, params, 'o.owner')}"
        " AND EXISTS (SELECT 1 FROM operation_tasks r WHERE r.operation_id = t.operation_id"
        " AND r.sequence = t.sequence AND r.version > 1)"
        " ORDER BY t.operation_id, t.sequence, t.version",
        params,
    ).fetchall()
    tasks: dict[tuple[str, int, str], list[_Version]] = defaultdict(list)
    for op, seq, request, version, current, status, desc, ins, result, done in rows:
        tasks[(op, seq, request)].append(
            _Version(version, bool(current), status, desc, ins, result, tx.parse_ts(done))
        )
    scores = _scores(tx, owner, "task", "operation_id, task_sequence, task_version")
    pairs = []
    for (op, seq, request), versions in tasks.items():
        kept = next((v for v in versions if v.current), None)
        done = kept.completed_at if kept else None
        if done is None or (since and done < since) or (until and done >= until):
            continue
        pairs += _rerun_pairs(op, seq, request, versions, scores)
    return pairs


# -- regenerated gateway answers ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Answer:
    id: str
    owner: str | None
    digest: str
    messages: list[Any]
    answer: str | None
    created_at: datetime
    conversation: str | None


def _went_on(answers: list[_Answer]) -> set[str]:
    """The answers a later request of the same owner carries as an assistant message."""
    latest: dict[tuple[str | None, str], datetime] = {}
    for a in answers:
        for m in a.messages:
            if isinstance(m, dict) and m.get("role") == "assistant":
                content = m.get("content")
                if isinstance(content, str) and content.strip():
                    key = (a.owner, content.strip())
                    latest[key] = max(latest.get(key, a.created_at), a.created_at)
    return {
        a.id
        for a in answers
        if a.answer and latest.get((a.owner, a.answer.strip()), a.created_at) > a.created_at
    }


def _regenerated_pairs(group: list[_Answer], scores: dict, went_on: set[str]) -> list[dict]:
    pairs, seen = [], set()
    for a, b in combinations(group, 2):
        order, why = prefer(
            scores.get((a.id,)), scores.get((b.id,)), a.id in went_on, b.id in went_on
        )
        if not order:
            continue
        chosen, rejected = (a, b) if order > 0 else (b, a)
        pair = _pair(
            chosen.messages, chosen.answer, rejected.answer, "regenerated",
            prompt_digest=chosen.digest, chosen_response_id=chosen.id,
            rejected_response_id=rejected.id, conversation_id=chosen.conversation,
            decided_by=why,
        )  # fmt: skip
        if pair is not None and (pair["chosen"], pair["rejected"]) not in seen:
            seen.add((pair["chosen"], pair["rejected"]))
            pairs.append(pair)
    return pairs


def _regenerated(tx: Tx, owner: Any, since: Any, until: Any) -> list[dict]:
    params: dict[str, Any] = {}
    rows = tx.execute(
        "SELECT id, owner, prompt_digest, messages, answer, created_at, conversation_id"
        f" FROM gateway_responses WHERE {_owned(owner, params, 'owner')}"
        f" AND {period_sql(tx, since, None, params, 'created_at')} ORDER BY created_at, id",
        params,
    ).fetchall()
    answers = [
        _Answer(i, o, d, tx.parse_json(m) or [], a, tx.parse_ts(c), conv)
        for i, o, d, m, a, c, conv in rows
    ]
    went_on = _went_on(answers)  # later requests count even past ``until``
    groups: dict[tuple[str | None, str], list[_Answer]] = defaultdict(list)
    for a in answers:
        if until is None or a.created_at < until:
            groups[(a.owner, a.digest)].append(a)
    scores = _scores(tx, owner, "response", "response_id")
    pairs = []
    for group in groups.values():
        if len({(a.answer or "").strip() for a in group}) > 1:
            pairs += _regenerated_pairs(group, scores, went_on)
    return pairs


async def preference_pairs(
    store: Writer,
    *,
    owner: Any = ANY_OWNER,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Every pair of the three sources whose evidence is from ``[since, until)`` (a
    correction given, a kept task version completed, an answer given), ``owner``'s or
    everyone's: corrections first, then task reruns, then regenerated answers."""

    def work(tx: Tx) -> list[dict[str, Any]]:
        return [
            *_corrections(tx, owner, since, until),
            *_reruns(tx, owner, since, until),
            *_regenerated(tx, owner, since, until),
        ]

    return await store.read(work)
