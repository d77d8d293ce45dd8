"""Approval policies per program, maker-checker on lines and batches (issue 7, part 1)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 04:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval_policies",
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("approver_roles", sa.JSON(), nullable=False),
        sa.Column("auto_approve_below", sa.BigInteger(), nullable=True),
        sa.Column("second_approval_above", sa.BigInteger(), nullable=True),
        sa.Column("batch_second_approval_above", sa.BigInteger(), nullable=True),
        sa.Column("sla_days", sa.Integer(), nullable=True),
        sa.Column("updated_by", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name="fk_approval_policies_program_id_programs"),
        sa.PrimaryKeyConstraint("program_id", name="pk_approval_policies"),
    )
    op.create_table(
        "line_first_approvals",
        sa.Column("line_id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("approved_by", sa.String(length=40), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["line_id"], ["commission_lines.id"], name="fk_line_first_approvals_line_id_commission_lines"
        ),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name="fk_line_first_approvals_program_id_programs"),
        sa.PrimaryKeyConstraint("line_id", name="pk_line_first_approvals"),
    )
    op.create_index("ix_line_first_approvals_program_id", "line_first_approvals", ["program_id"], unique=False)
    op.create_table(
        "overdue_notices",
        sa.Column("line_id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"], ["commission_lines.id"], name="fk_overdue_notices_line_id_commission_lines"
        ),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name="fk_overdue_notices_program_id_programs"),
        sa.PrimaryKeyConstraint("line_id", "day", name="pk_overdue_notices"),
    )
    op.create_index("ix_overdue_notices_program_id", "overdue_notices", ["program_id"], unique=False)
    with op.batch_alter_table("payout_batches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("second_approved_by", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("second_approved_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("payout_batches", schema=None) as batch_op:
        batch_op.drop_column("second_approved_at")
        batch_op.drop_column("second_approved_by")
    op.drop_index("ix_overdue_notices_program_id", table_name="overdue_notices")
    op.drop_table("overdue_notices")
    op.drop_index("ix_line_first_approvals_program_id", table_name="line_first_approvals")
    op.drop_table("line_first_approvals")
    op.drop_table("approval_policies")
