"""Weekly reports and dashboard rollups (issue 8 parts 5, 8)

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-26 07:30:00
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)
_CLUSTERED = {"sqlite_with_rowid": False}  # SQLite keeps the rows in primary-key order (reports/models.py)


def _counts() -> list[sa.Column[int]]:
    names = ("clicks", "signups", "leads", "deals_won", "conversions", "customers_paid")
    counts = [sa.Column(name, sa.Integer(), nullable=False) for name in names]
    return [
        *counts,
        *(sa.Column(n, sa.BigInteger(), nullable=False) for n in ("program_revenue", "program_commissions")),
    ]


def _money() -> list[sa.Column[int]]:
    return [
        sa.Column(name, sa.BigInteger(), nullable=False)
        for name in ("revenue", "won_amount", "commissions", "payouts_paid")
    ]


def _key(*names: str) -> list[sa.Column[Any]]:
    sizes = {"program_id": 40, "partner_id": 40, "currency": 3, "status": 16}
    return [
        sa.Column(n, sa.Date(), nullable=False)
        if n == "day"
        else sa.Column(n, sa.String(length=sizes[n]), nullable=False)
        for n in names
    ]


def upgrade() -> None:
    op.create_table(
        "report_partner_days",
        *_key("program_id", "day", "partner_id"),
        *_counts(),
        sa.PrimaryKeyConstraint("program_id", "day", "partner_id", name="pk_report_partner_days"),
        **_CLUSTERED,
    )
    op.create_index("ix_report_partner_days_partner_day", "report_partner_days", ["partner_id", "day"])
    op.create_table(
        "report_partner_money",
        *_key("program_id", "day", "partner_id", "currency"),
        *_money(),
        sa.PrimaryKeyConstraint("program_id", "day", "partner_id", "currency", name="pk_report_partner_money"),
        **_CLUSTERED,
    )
    op.create_index("ix_report_partner_money_partner_day", "report_partner_money", ["partner_id", "day"])
    op.create_table(
        "report_program_days",
        *_key("program_id", "day"),
        *_counts(),
        sa.PrimaryKeyConstraint("program_id", "day", name="pk_report_program_days"),
        **_CLUSTERED,
    )
    op.create_table(
        "report_program_money",
        *_key("program_id", "day", "currency"),
        *_money(),
        sa.PrimaryKeyConstraint("program_id", "day", "currency", name="pk_report_program_money"),
        **_CLUSTERED,
    )
    op.create_table(
        "report_commission_status",
        *_key("program_id", "partner_id", "currency", "status"),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("program_id", "partner_id", "currency", "status", name="pk_report_commission_status"),
        **_CLUSTERED,
    )
    op.create_table(
        "report_rollup_marks",
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("mark", sa.String(length=64), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("source", name="pk_report_rollup_marks"),
    )
    op.create_table(
        "report_schedules",
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("weekday", sa.Integer(), nullable=False),
        sa.Column("hour", sa.Integer(), nullable=False),
        sa.Column("minute", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("staff_ids", sa.JSON(), nullable=False),
        sa.Column("send_to_partners", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=40), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name="fk_report_schedules_program_id_programs"),
        sa.PrimaryKeyConstraint("program_id", name="pk_report_schedules"),
    )


def downgrade() -> None:
    op.drop_table("report_schedules")
    op.drop_table("report_rollup_marks")
    op.drop_table("report_commission_status")
    op.drop_table("report_program_money")
    op.drop_table("report_program_days")
    op.drop_index("ix_report_partner_money_partner_day", table_name="report_partner_money")
    op.drop_table("report_partner_money")
    op.drop_index("ix_report_partner_days_partner_day", table_name="report_partner_days")
    op.drop_table("report_partner_days")
