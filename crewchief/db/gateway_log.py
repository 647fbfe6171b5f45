"""The gateway's request log: its kept answers (``gateway_responses``), newest first.

An owner's page reads ``ix_gateway_responses_owner_created``; every owner's (keyless dev
mode, the library) scans the table, which is kept without another index so each gateway
request pays one index for its insert.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crewchief.db.repository import ANY_OWNER, owner_sql, period_sql
from crewchief.db.writer import Tx, Writer
from crewchief.results import GatewayRequest

_COLUMNS = (
    "id, created_at, owner, api_key_id, role, model, auto_tier, simplicity_score, cache,"
    " stream, latency_ms, fallbacks, input_tokens, output_tokens, cost_usd, conversation_id,"
    " question"
)


def _request(tx: Tx, r: tuple[Any, ...]) -> GatewayRequest:
    return GatewayRequest(
        id=r[0],
        created_at=tx.parse_ts(r[1]),
        owner=r[2],
        api_key_id=r[3],
        role=r[4],
        model=r[5],
        auto_tier=r[6],
        simplicity_score=r[7],
        cache=r[8],
        stream=None if r[9] is None else bool(r[9]),
        latency_ms=r[10],
        fallbacks=tx.parse_json(r[11]) or [],
        input_tokens=r[12],
        output_tokens=r[13],
        cost_usd=r[14],
        conversation_id=r[15],
        question=r[16],
    )


async def list_requests(
    store: Writer,
    *,
    owner: Any = ANY_OWNER,
    role: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    before: tuple[datetime, str] | None = None,
    limit: int = 50,
) -> list[GatewayRequest]:
    """The kept answers in ``[since, until)``, newest first, ``owner``'s or everyone's.

    Args:
        before: ``(created_at, id)`` of the last item of the previous page.
    """

    def work(tx: Tx) -> list[GatewayRequest]:
        params: dict[str, Any] = {"limit": limit}
        where = [
            owner_sql(owner, params, "owner"),
            period_sql(tx, since, until, params, "created_at"),
        ]
        if role is not None:
            where.append("role = :role")
            params["role"] = role
        if before is not None:
            where.append("(created_at < :before OR (created_at = :before AND id < :before_id))")
            params["before"] = tx.ts(before[0])
            params["before_id"] = before[1]
        rows = tx.execute(
            f"SELECT {_COLUMNS} FROM gateway_responses WHERE {' AND '.join(where)}"  # noqa: S608
            " ORDER BY created_at DESC, id DESC LIMIT :limit",
            params,
        ).fetchall()
        return [_request(tx, r) for r in rows]

    return await store.read(work)
