"""Manual commission adjustments: who asked and why (issue 6)

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 19:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Both nullable: lines made from events have no human creator and no free-text reason.
    with op.batch_alter_table("commission_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("commission_lines", schema=None) as batch_op:
        batch_op.drop_column("reason")
        batch_op.drop_column("created_by")
