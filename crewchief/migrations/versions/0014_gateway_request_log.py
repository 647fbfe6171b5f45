"""The gateway's request log: how each kept answer's request went.

- ``gateway_responses.stream``: whether the client asked for a stream.
- ``gateway_responses.latency_ms``: the wall time from the request's arrival to its answer
  (a stream's end).
- ``gateway_responses.fallbacks``: the failed attempts before the answer, ``{model, error}``
  each, in order.
- ``gateway_responses.input_tokens``, ``output_tokens``, ``cost_usd``: the answer's.
- ``gateway_responses.question``: the start of the last user message (200 characters), so
  the log lists requests without reading their messages; filled in for existing rows.

The figures of answers kept before this revision stay NULL: they were not measured. No
index is added: every index more would cost each gateway request its insert.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-12 10:00:00
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "question", "cost_usd", "output_tokens", "input_tokens", "fallbacks", "latency_ms", "stream",
)  # fmt: skip


def _question(messages: Any) -> str | None:
    """The start of the last user message's text, as the gateway writes it from 0014 on."""
    if isinstance(messages, str | bytes):
        try:
            messages = json.loads(messages)
        except ValueError:
            return None
    for message in reversed(messages if isinstance(messages, list) else []):
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(
                p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
        text = " ".join(content.split()) if isinstance(content, str) else ""
        return text[:200] or None
    return None


def upgrade() -> None:
    with op.batch_alter_table("gateway_responses") as batch:
        batch.add_column(sa.Column("stream", sa.Boolean(), nullable=True))
        batch.add_column(sa.Column("latency_ms", sa.Float(), nullable=True))
        batch.add_column(sa.Column("fallbacks", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("input_tokens", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("output_tokens", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("cost_usd", sa.Float(), nullable=True))
        batch.add_column(sa.Column("question", sa.String(length=200), nullable=True))
    conn = op.get_bind()
    last = ""
    while True:  # in pages, so a long log is not read into memory at once
        rows = conn.execute(
            sa.text(
                "SELECT id, messages FROM gateway_responses WHERE id > :last ORDER BY id LIMIT 500"
            ),
            {"last": last},
        ).all()
        if not rows:
            break
        for rid, messages in rows:
            question = _question(messages)
            if question is not None:
                conn.execute(
                    sa.text("UPDATE gateway_responses SET question = :q WHERE id = :id"),
                    {"q": question, "id": rid},
                )
        last = rows[-1][0]


def downgrade() -> None:
    with op.batch_alter_table("gateway_responses") as batch:
        for column in _COLUMNS:
            batch.drop_column(column)
