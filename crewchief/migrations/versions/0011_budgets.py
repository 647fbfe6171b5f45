"""Budgets, their counters and reservations, and the plan (tier) of each API key.

- ``api_keys.tier``: the plan in the settings' ``[plans]`` a key belongs to (NULL: the
  ``default_plan``, or none).
- ``budgets``: a limit per key or owner (``scope``, ``subject``) per UTC day and month,
  hard or soft, refusing or downgrading once exhausted; ``set_by`` says whether the
  operator (CLI, admin key) or the owner set it: an owner cannot change the operator's.
- ``budget_counters``: what was spent in one period of one subject, in nano-dollars (or a
  count, for quotas); ``budget_holds``: the reservations of calls under way, each until it
  is settled or expires (its process died mid-call).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("tier", sa.String(length=64), nullable=True))
    op.create_table(
        "budgets",
        sa.Column("scope", sa.String(length=8), nullable=False),
        sa.Column("subject", sa.String(length=64), nullable=False),
        sa.Column("daily_usd", sa.Float(), nullable=True),
        sa.Column("monthly_usd", sa.Float(), nullable=True),
        sa.Column("enforcement", sa.String(length=8), nullable=False),
        sa.Column("on_exceed", sa.String(length=16), nullable=False),
        sa.Column("set_by", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("scope", "subject"),
    )
    op.create_table(
        "budget_counters",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("spent", sa.BigInteger(), nullable=False),
        sa.Column("period_end", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("key"),
    )
    op.create_table(
        "budget_holds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("counter", sa.String(length=200), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", "counter"),
    )
    op.create_index("ix_budget_holds_counter", "budget_holds", ["counter"])


def downgrade() -> None:
    op.drop_index("ix_budget_holds_counter", table_name="budget_holds")
    op.drop_table("budget_holds")
    op.drop_table("budget_counters")
    op.drop_table("budgets")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("tier")
