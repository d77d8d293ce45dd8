"""Currency conversion rates with their source and date (issue 6)

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-25 19:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # The rate is rate_units / 10**rate_scale, two integers, never a float (see partnerpay.fx.models).
    op.create_table(
        "fx_rates",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("base", sa.String(length=3), nullable=False),
        sa.Column("quote", sa.String(length=3), nullable=False),
        sa.Column("rate_units", sa.BigInteger(), nullable=False),
        sa.Column("rate_scale", sa.SmallInteger(), nullable=False),
        sa.Column("rate_date", sa.Date(), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_fx_rates_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fx_rates")),
        sa.UniqueConstraint(
            "program_id", "base", "quote", "rate_date", name=op.f("uq_fx_rates_program_id_base_quote_rate_date")
        ),
    )


def downgrade() -> None:
    op.drop_table("fx_rates")
