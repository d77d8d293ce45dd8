"""Payout schedules, minimum thresholds and multi-currency runs (issue 7, parts 2, 3, 7)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "payout_settings",
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("schedule", sa.String(length=16), nullable=False),
        sa.Column("day_of_month", sa.Integer(), nullable=True),
        sa.Column("second_day", sa.Integer(), nullable=True),
        sa.Column("weekday", sa.Integer(), nullable=True),
        sa.Column("net_days", sa.Integer(), nullable=True),
        sa.Column("run_hour", sa.Integer(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("next_run_at", _TS, nullable=True),
        sa.Column("minimums", sa.JSON(), nullable=False),
        sa.Column("pay_in_partner_currency", sa.Boolean(), nullable=False),
        sa.Column("require_verified_method", sa.Boolean(), nullable=False),
        sa.Column("require_tax_form", sa.Boolean(), nullable=False),
        sa.Column("updated_by", sa.String(length=40), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name="fk_payout_settings_program_id_programs"),
        sa.PrimaryKeyConstraint("program_id", name="pk_payout_settings"),
    )
    op.create_table(
        "partner_payout_currencies",
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("updated_by", sa.String(length=40), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name="fk_partner_payout_currencies_partner_id_partners"
        ),
        sa.PrimaryKeyConstraint("partner_id", name="pk_partner_payout_currencies"),
    )
    op.create_table(
        "payout_skips",
        sa.Column("run_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name="fk_payout_skips_partner_id_partners"),
        sa.ForeignKeyConstraint(["run_id"], ["payout_runs.id"], name="fk_payout_skips_run_id_payout_runs"),
        sa.PrimaryKeyConstraint("run_id", "partner_id", "currency", name="pk_payout_skips"),
    )
    op.create_index("ix_payout_skips_partner", "payout_skips", ["partner_id", "created_at"], unique=False)
    op.create_table(
        "scheduler_slots",
        sa.Column("task", sa.String(length=64), nullable=False),
        sa.Column("slot", sa.String(length=200), nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("task", "slot", name="pk_scheduler_slots"),
    )
    with op.batch_alter_table("payout_batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("scheduled_for", _TS, nullable=True))
        batch_op.add_column(sa.Column("source_currency", sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column("source_total", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("fx_rate_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("fx_rate", sa.String(length=32), nullable=True))
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("source_amount", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("source_currency", sa.String(length=3), nullable=True))
        batch_op.add_column(sa.Column("fx_rate_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("fx_rate", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payouts", schema=None) as batch_op:
        for column in ("fx_rate", "fx_rate_id", "source_currency", "source_amount"):
            batch_op.drop_column(column)
    with op.batch_alter_table("payout_batches", schema=None) as batch_op:
        for column in ("fx_rate", "fx_rate_id", "source_total", "source_currency", "scheduled_for"):
            batch_op.drop_column(column)
    op.drop_table("scheduler_slots")
    op.drop_index("ix_payout_skips_partner", table_name="payout_skips")
    op.drop_table("payout_skips")
    op.drop_table("partner_payout_currencies")
    op.drop_table("payout_settings")
