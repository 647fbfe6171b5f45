"""Owners' provider credentials, and whose credentials paid for each model call.

- ``credentials``: one row per owner and provider name with the owner's API key encrypted
  (a Fernet token under ``secret_keys``), an optional base URL of their own
  OpenAI-compatible server and a fingerprint they recognise it by; ``owner`` is ``""``
  for calls made without an API key.
- ``model_calls.paid_by``: ``platform`` (the service's credentials; every existing row) or
  ``owner`` (the caller's own stored key).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "credentials",
        sa.Column("owner", sa.String(length=64), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("base_url", sa.Text(), nullable=True),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(length=32), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("owner", "provider"),
    )
    with op.batch_alter_table("model_calls") as batch:
        batch.add_column(
            sa.Column("paid_by", sa.String(length=16), server_default="platform", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("model_calls") as batch:
        batch.drop_column("paid_by")
    op.drop_table("credentials")
