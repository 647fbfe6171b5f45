"""Who made a model call outside an operation: the gateway's ledger rows.

- ``model_calls.owner``: the owner of the API key that made the call (NULL for calls of
  operations, whose owner is the operation's).
- ``model_calls.api_key_id``: that key.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_calls") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("api_key_id", sa.String(length=32), nullable=True))
        batch.create_index("ix_model_calls_owner_created", ["owner", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("model_calls") as batch:
        batch.drop_index("ix_model_calls_owner_created")
        batch.drop_column("api_key_id")
        batch.drop_column("owner")
