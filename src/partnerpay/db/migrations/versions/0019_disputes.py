"""Disputes (issue 8 part 2): disputes, their evidence files, and each program's dispute SLA

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-26 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dispute_settings",
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("sla_days", sa.Integer(), nullable=False),
        sa.Column("updated_by", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name="fk_dispute_settings_program_id_programs"),
        sa.PrimaryKeyConstraint("program_id", name="pk_dispute_settings"),
    )
    op.create_table(
        "disputes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("line_id", sa.String(length=40), nullable=True),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("customer_ref", sa.String(length=200), nullable=True),
        sa.Column("event_date", sa.DateTime(timezone=True), nullable=True),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("owner_id", sa.String(length=40), nullable=True),
        sa.Column("opened_by", sa.String(length=40), nullable=False),
        sa.Column("opened_by_type", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=40), nullable=True),
        sa.Column("resolution_reason", sa.Text(), nullable=True),
        sa.Column("adjustment_line_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(
            ["adjustment_line_id"], ["commission_lines.id"], name="fk_disputes_adjustment_line_id_commission_lines"
        ),
        sa.ForeignKeyConstraint(["line_id"], ["commission_lines.id"], name="fk_disputes_line_id_commission_lines"),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name="fk_disputes_partner_id_partners"),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name="fk_disputes_program_id_programs"),
        sa.PrimaryKeyConstraint("id", name="pk_disputes"),
    )
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.create_index("ix_disputes_line_id", ["line_id"], unique=False)
        batch_op.create_index("ix_disputes_partner_status", ["partner_id", "status"], unique=False)
        batch_op.create_index("ix_disputes_program_status_due", ["program_id", "status", "due_at"], unique=False)
    op.create_table(
        "dispute_evidence",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("dispute_id", sa.String(length=40), nullable=False),
        sa.Column("attachment_id", sa.String(length=40), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("added_by", sa.String(length=40), nullable=False),
        sa.Column("added_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["dispute_id"], ["disputes.id"], name="fk_dispute_evidence_dispute_id_disputes"),
        sa.PrimaryKeyConstraint("id", name="pk_dispute_evidence"),
        sa.UniqueConstraint("dispute_id", "attachment_id", name="uq_dispute_evidence_dispute_id_attachment_id"),
    )
    with op.batch_alter_table("dispute_evidence", schema=None) as batch_op:
        batch_op.create_index("ix_dispute_evidence_dispute_id", ["dispute_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dispute_evidence", schema=None) as batch_op:
        batch_op.drop_index("ix_dispute_evidence_dispute_id")
    op.drop_table("dispute_evidence")
    with op.batch_alter_table("disputes", schema=None) as batch_op:
        batch_op.drop_index("ix_disputes_program_status_due")
        batch_op.drop_index("ix_disputes_partner_status")
        batch_op.drop_index("ix_disputes_line_id")
    op.drop_table("disputes")
    op.drop_table("dispute_settings")
