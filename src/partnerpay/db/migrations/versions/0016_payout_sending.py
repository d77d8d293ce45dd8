"""Funding accounts and sending payouts through their rails (issue 7, parts 4, 5)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("payout_batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("sent_by", sa.String(length=40), nullable=True))
    # attempts: 0 for payouts made before sending existed (none of them was sent by partnerpay).
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("rail", sa.String(length=20), nullable=True))
        batch_op.add_column(sa.Column("idempotency_key", sa.String(length=255), nullable=True))
        batch_op.add_column(sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("attempts", sa.Integer(), server_default="0", nullable=False))
        batch_op.add_column(sa.Column("last_error", sa.Text(), nullable=True))
    op.create_table(
        "funding_accounts",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("details_encrypted", sa.Text(), nullable=False),
        sa.Column("masked", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_funding_accounts_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_funding_accounts")),
        sa.UniqueConstraint("program_id", "kind", name=op.f("uq_funding_accounts_program_id_kind")),
    )
    op.create_table(
        "payout_files",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("format", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("media_type", sa.String(length=100), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("control_sum", sa.BigInteger(), nullable=False),
        sa.Column("item_count", sa.Integer(), nullable=False),
        sa.Column("payout_ids", sa.JSON(), nullable=False),
        sa.Column("references", sa.JSON(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["payout_batches.id"], name=op.f("fk_payout_files_batch_id_payout_batches")
        ),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_payout_files_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_files")),
        sa.UniqueConstraint("batch_id", "format", name=op.f("uq_payout_files_batch_id_format")),
    )


def downgrade() -> None:
    op.drop_table("payout_files")
    op.drop_table("funding_accounts")
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        for column in ("last_error", "attempts", "sent_at", "idempotency_key", "rail"):
            batch_op.drop_column(column)
    with op.batch_alter_table("payout_batches", schema=None) as batch_op:
        batch_op.drop_column("sent_by")
        batch_op.drop_column("sent_at")
