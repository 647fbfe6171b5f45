"""Feedback: the gateway's answers by id, and ratings with corrections.

- ``gateway_responses``: one row per gateway chat completion (``x_crewchief.id``): owner,
  key, role, model, the ``auto`` tier and simplicity score, cache state, conversation, the
  messages as the client sent them with their digest, and the answer's text.
- ``feedback``: one rating per owner and target (an operation, one version of a task, a
  gateway response): thumb or stars with the score in 0..1, an optional correction and
  comment, and the dimensions it is reported by, copied from the target when it was rated.
  Deleting an operation or a response deletes its feedback.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "gateway_responses",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=True),
        sa.Column("api_key_id", sa.String(length=32), nullable=True),
        sa.Column("role", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("auto_tier", sa.String(length=16), nullable=True),
        sa.Column("simplicity_score", sa.Float(), nullable=True),
        sa.Column("cache", sa.String(length=16), nullable=False),
        sa.Column("conversation_id", sa.String(length=128), nullable=True),
        sa.Column("prompt_digest", sa.String(length=64), nullable=False),
        sa.Column("messages", sa.JSON(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_gateway_responses_owner_created", "gateway_responses", ["owner", "created_at"]
    )
    op.create_table(
        "feedback",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("api_key_id", sa.String(length=32), nullable=True),
        sa.Column("target_kind", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.String(length=200), nullable=False),
        sa.Column("operation_id", sa.String(length=36), nullable=True),
        sa.Column("task_sequence", sa.Integer(), nullable=True),
        sa.Column("task_version", sa.Integer(), nullable=True),
        sa.Column("response_id", sa.String(length=40), nullable=True),
        sa.Column("rating_kind", sa.String(length=8), nullable=False),
        sa.Column("rating", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("correction", sa.Text(), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("role", sa.String(length=64), nullable=True),
        sa.Column("model", sa.String(length=200), nullable=True),
        sa.Column("skill", sa.String(length=64), nullable=True),
        sa.Column("route", sa.String(length=32), nullable=True),
        sa.Column("tier", sa.String(length=32), nullable=True),
        sa.Column("simplicity_score", sa.Float(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["operation_id"], ["operations.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["response_id"], ["gateway_responses.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("owner", "target_kind", "target_id", name="uq_feedback_owner_target"),
    )
    op.create_index("ix_feedback_owner_created", "feedback", ["owner", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_feedback_owner_created", table_name="feedback")
    op.drop_table("feedback")
    op.drop_index("ix_gateway_responses_owner_created", table_name="gateway_responses")
    op.drop_table("gateway_responses")
