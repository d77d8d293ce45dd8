"""Statements (issue 8 part 1)

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # One row per distinct statement content issued for a partner and period (statements/models.py).
    op.create_table(
        "statements",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("period", sa.String(length=7), nullable=False),
        sa.Column("currencies", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("pdf_sha256", sa.String(length=64), nullable=True),
        sa.Column("csv_sha256", sa.String(length=64), nullable=True),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("issued_by", sa.String(length=40), nullable=False),
        sa.Column("issued_by_type", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name="fk_statements_partner_id_partners"),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name="fk_statements_program_id_programs"),
        sa.PrimaryKeyConstraint("id", name="pk_statements"),
        sa.UniqueConstraint("partner_id", "period", "sha256", name="uq_statements_partner_id_period_sha256"),
    )
    with op.batch_alter_table("statements", schema=None) as batch_op:
        batch_op.create_index("ix_statements_partner_period", ["partner_id", "period"], unique=False)
        batch_op.create_index("ix_statements_program_id", ["program_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("statements", schema=None) as batch_op:
        batch_op.drop_index("ix_statements_program_id")
        batch_op.drop_index("ix_statements_partner_period")
    op.drop_table("statements")
