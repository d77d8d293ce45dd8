"""Reconciliation, returns, tax reports and the partner's payout timeline (issue 7, parts 6, 8, 9)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("returned_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("failure_reason", sa.Text(), nullable=True))
    op.create_table(
        "payout_line_releases",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("payout_id", sa.String(length=40), nullable=False),
        sa.Column("line_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"], ["commission_lines.id"], name="fk_payout_line_releases_line_id_commission_lines"
        ),
        sa.ForeignKeyConstraint(["payout_id"], ["payouts.id"], name="fk_payout_line_releases_payout_id_payouts"),
        sa.PrimaryKeyConstraint("id", name="pk_payout_line_releases"),
        sa.UniqueConstraint("payout_id", "line_id", name="uq_payout_line_releases_payout_id_line_id"),
    )
    with op.batch_alter_table("payout_line_releases", schema=None) as batch_op:
        batch_op.create_index("ix_payout_line_releases_line_id", ["line_id"], unique=False)
        batch_op.create_index("ix_payout_line_releases_payout_id", ["payout_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("payout_line_releases", schema=None) as batch_op:
        batch_op.drop_index("ix_payout_line_releases_payout_id")
        batch_op.drop_index("ix_payout_line_releases_line_id")
    op.drop_table("payout_line_releases")
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.drop_column("failure_reason")
        batch_op.drop_column("returned_at")
        batch_op.drop_column("failed_at")
