"""Dashboard windows: partners' figures summed over the last 7 and 30 days, refreshed by the rollup

Revision ID: 0025
Revises: 0024
Create Date: 2026-11-26 11:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_partner_windows",
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("days", sa.Integer(), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        *(sa.Column(n, sa.Integer(), nullable=False) for n in ("clicks", "signups", "conversions", "deals_won")),
        *(sa.Column(n, sa.BigInteger(), nullable=False) for n in ("program_revenue", "program_commissions")),
        sa.PrimaryKeyConstraint("program_id", "days", "partner_id", name="pk_report_partner_windows"),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_report_partner_windows_rank",
        "report_partner_windows",
        [
            "program_id",
            "days",
            sa.text("program_revenue DESC"),
            sa.text("conversions DESC"),
            sa.text("clicks DESC"),
            "partner_id",
        ],
    )
    op.create_table(
        "report_window_marks",
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("as_of", sa.Date(), nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("program_id", name="pk_report_window_marks"),
    )


def downgrade() -> None:
    op.drop_table("report_window_marks")
    op.drop_index("ix_report_partner_windows_rank", table_name="report_partner_windows")
    op.drop_table("report_partner_windows")
