"""What each model call cost, and whose it was.

- ``model_calls.cost_usd`` and ``cost_source`` (``provider`` | ``table`` | ``unpriced``):
  rows written before this revision keep 0 and ``unpriced`` (their cost is not computed
  after the fact: the prices of the day are not known).
- ``model_calls.cached_input_tokens``: prompt tokens read from the provider's cache.
- ``model_calls.role``: the gateway role a call served, filled in for existing rows from
  their ``purpose`` (``gateway:<role>``, ``gateway:rewrite:<role>``, ...).
- ``model_calls.owner`` is now written for the calls of operations too (the operation's
  owner), and filled in for existing rows, so usage is summed per owner in one table.
- ``operations.api_key_id``: the key that started the operation, written to its calls.

No index is added: a report for one owner uses ``ix_model_calls_owner_created``, and every
index more would cost each ledger insert, which the gateway makes per request.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-10 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _role(purpose: str) -> str:
    """``gateway:architect``, ``gateway:rewrite:architect`` -> ``architect``."""
    rest = purpose.removeprefix("gateway:")
    for helper in ("rewrite:", "summary:"):
        if rest.startswith(helper):
            return rest.removeprefix(helper)
    return rest


def upgrade() -> None:
    with op.batch_alter_table("operations") as batch:
        batch.add_column(sa.Column("api_key_id", sa.String(length=32), nullable=True))
    with op.batch_alter_table("model_calls") as batch:
        batch.add_column(sa.Column("role", sa.String(length=64), nullable=True))
        batch.add_column(
            sa.Column("cached_input_tokens", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(sa.Column("cost_usd", sa.Float(), server_default="0", nullable=False))
        batch.add_column(
            sa.Column(
                "cost_source", sa.String(length=16), server_default="unpriced", nullable=False
            )
        )
    conn = op.get_bind()
    conn.execute(
        sa.text(
            "UPDATE model_calls SET owner = (SELECT o.owner FROM operations o"
            " WHERE o.id = model_calls.operation_id)"
            " WHERE owner IS NULL AND operation_id IS NOT NULL"
        )
    )
    purposes = conn.execute(
        sa.text("SELECT DISTINCT purpose FROM model_calls WHERE purpose LIKE 'gateway:%'")
    ).scalars()
    for purpose in list(purposes):
        conn.execute(
            sa.text("UPDATE model_calls SET role = :role WHERE purpose = :purpose"),
            {"role": _role(purpose)[:64], "purpose": purpose},
        )


def downgrade() -> None:
    with op.batch_alter_table("model_calls") as batch:
        batch.drop_column("cost_source")
        batch.drop_column("cost_usd")
        batch.drop_column("cached_input_tokens")
        batch.drop_column("role")
    with op.batch_alter_table("operations") as batch:
        batch.drop_column("api_key_id")
