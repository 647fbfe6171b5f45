"""REST API: operation owners and options, task versions, API keys.

- ``operations.owner``: the API key owner an operation belongs to (NULL for library runs).
- ``operations.options``: how it was started (``approve_plan``, model overrides), so a
  resumed, reviewed or re-run operation keeps them.
- ``operation_tasks.version`` / ``is_current`` / ``instructions``: re-running a task adds a
  version; earlier versions stay as history.
- ``api_keys``: bearer keys, stored as SHA-256 hashes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("owner", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("options", sa.JSON(), nullable=True))
        batch.create_index("ix_operations_owner_created", ["owner", "created_at"])
    with op.batch_alter_table("operation_tasks") as batch:
        batch.add_column(
            sa.Column("version", sa.Integer(), nullable=False, server_default=sa.text("1"))
        )
        batch.add_column(
            sa.Column("is_current", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch.add_column(sa.Column("instructions", sa.Text(), nullable=True))
        batch.drop_constraint("uq_task_operation_sequence", type_="unique")
        batch.create_unique_constraint(
            "uq_task_operation_sequence_version", ["operation_id", "sequence", "version"]
        )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(length=32), primary_key=True),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.UniqueConstraint("key_hash", name="uq_api_keys_hash"),
    )


def downgrade() -> None:
    op.drop_table("api_keys")
    with op.batch_alter_table("operation_tasks") as batch:
        batch.drop_constraint("uq_task_operation_sequence_version", type_="unique")
        batch.create_unique_constraint("uq_task_operation_sequence", ["operation_id", "sequence"])
        batch.drop_column("instructions")
        batch.drop_column("is_current")
        batch.drop_column("version")
    with op.batch_alter_table("operations") as batch:
        batch.drop_index("ix_operations_owner_created")
        batch.drop_column("options")
        batch.drop_column("owner")
