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
    # Tax reports (part 8): a program's 1099-NEC threshold and self-billing settings, and issued invoices.
    op.create_table(
        "program_tax_settings",
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("nec_threshold", sa.BigInteger(), nullable=False),
        sa.Column("self_billing", sa.Boolean(), nullable=False),
        sa.Column("invoice_prefix", sa.String(length=20), nullable=False),
        sa.Column("next_invoice_number", sa.Integer(), nullable=False),
        sa.Column("issuer_name", sa.String(length=200), nullable=True),
        sa.Column("issuer_address", sa.Text(), nullable=True),
        sa.Column("issuer_country", sa.String(length=2), nullable=True),
        sa.Column("issuer_vat_id", sa.String(length=32), nullable=True),
        sa.Column("updated_by", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name="fk_program_tax_settings_program_id_programs"),
        sa.PrimaryKeyConstraint("program_id", name="pk_program_tax_settings"),
    )
    op.create_table(
        "self_billing_invoices",
        sa.Column("payout_id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["payout_id"], ["payouts.id"], name="fk_self_billing_invoices_payout_id_payouts"),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name="fk_self_billing_invoices_program_id_programs"),
        sa.PrimaryKeyConstraint("payout_id", name="pk_self_billing_invoices"),
        sa.UniqueConstraint("program_id", "number", name="uq_self_billing_invoices_program_id_number"),
        sa.UniqueConstraint("program_id", "sequence", name="uq_self_billing_invoices_program_id_sequence"),
    )


def downgrade() -> None:
    op.drop_table("self_billing_invoices")
    op.drop_table("program_tax_settings")
    with op.batch_alter_table("payout_line_releases", schema=None) as batch_op:
        batch_op.drop_index("ix_payout_line_releases_payout_id")
        batch_op.drop_index("ix_payout_line_releases_line_id")
    op.drop_table("payout_line_releases")
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.drop_column("failure_reason")
        batch_op.drop_column("returned_at")
        batch_op.drop_column("failed_at")
