"""Run leases: which process runs an operation, and until when it has promised to.

- ``operations.lease_holder``: the process running it (``host:pid:token``), NULL when none.
- ``operations.lease_expires_at``: the holder renews it while the run goes on; a running
  operation whose lease expired lost its process and is taken over by another.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 01:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("lease_holder", sa.String(length=128), nullable=True))
        batch.add_column(sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("lease_expires_at")
        batch.drop_column("lease_holder")
