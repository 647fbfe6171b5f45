"""Owner profiles, and what the planner was given beyond the request.

- ``profiles``: one row per owner with stated and learned preferences (``owner`` is ``""``
  for calls made without an API key).
- ``operations.planning_context``: the earlier operations and the profile the planner's
  prompt included, and why.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "profiles",
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("stated", sa.JSON(), nullable=False),
        sa.Column("learned", sa.JSON(), nullable=False),
        sa.Column("learned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner"),
    )
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("planning_context", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("planning_context")
    op.drop_table("profiles")
