"""Clicks lose the index on (ip_hash, at)

No query looks clicks up by address hash: the fraud sweep's bursts are read by program and time
(ix_clicks_program_at) and grouped by address. An index on a keyed hash, random by design, was the
costliest of the clicks' indexes to keep up at redirect rates.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 17:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.drop_index("ix_clicks_ip_at")


def downgrade() -> None:
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.create_index("ix_clicks_ip_at", ["ip_hash", "at"], unique=False)
