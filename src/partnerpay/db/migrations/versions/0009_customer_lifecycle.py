"""Customer lifecycle (status, lifetime revenue, first payment) and per-program custom event types

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-25 19:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("status", sa.String(length=16), nullable=False, server_default="lead"))
        batch_op.add_column(sa.Column("lifetime_revenue", sa.BigInteger(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("first_paid_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index("ix_customers_program_status", ["program_id", "status"], unique=False)
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("custom_event_types", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.drop_column("custom_event_types")
    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_index("ix_customers_program_status")
        for name in ("status_changed_at", "last_event_at", "first_paid_at", "lifetime_revenue", "status"):
            batch_op.drop_column(name)
