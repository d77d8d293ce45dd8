"""Self-billing credit notes: a returned payout's issued invoice is cancelled by a credit note, never changed

Revision ID: 0027
Revises: 0026
Create Date: 2026-11-26 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "self_billing_credit_notes",
        sa.Column("payout_id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("sequence", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(length=40), nullable=False),
        sa.Column("invoice_number", sa.String(length=40), nullable=False),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["payout_id"],
            ["self_billing_invoices.payout_id"],
            name="fk_self_billing_credit_notes_payout_id_self_billing_invoices",
        ),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name="fk_self_billing_credit_notes_program_id_programs"
        ),
        sa.PrimaryKeyConstraint("payout_id", name="pk_self_billing_credit_notes"),
        sa.UniqueConstraint("program_id", "number", name="uq_self_billing_credit_notes_program_id_number"),
        sa.UniqueConstraint("program_id", "sequence", name="uq_self_billing_credit_notes_program_id_sequence"),
    )


def downgrade() -> None:
    op.drop_table("self_billing_credit_notes")
