"""Commission plans: versioned, effective-dated rules and their assignments (issue 6)

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-25 19:50:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "plans",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_plans_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plans")),
        sa.UniqueConstraint("program_id", "name", name=op.f("uq_plans_program_id_name")),
    )
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plans_program_id"), ["program_id"], unique=False)

    op.create_table(
        "plan_versions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("published_by", sa.String(length=80), nullable=True),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_plan_versions_plan_id_plans")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_versions")),
        sa.UniqueConstraint("plan_id", "version", name=op.f("uq_plan_versions_plan_id_version")),
    )
    with op.batch_alter_table("plan_versions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_plan_versions_plan_id"), ["plan_id"], unique=False)

    op.create_table(
        "plan_assignments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("plan_id", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("group_id", sa.String(length=40), nullable=True),
        sa.Column("partner_id", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("effective_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_by", sa.String(length=80), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"], ["partner_groups.id"], name=op.f("fk_plan_assignments_group_id_partner_groups")
        ),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_plan_assignments_partner_id_partners")),
        sa.ForeignKeyConstraint(["plan_id"], ["plans.id"], name=op.f("fk_plan_assignments_plan_id_plans")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_plan_assignments_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_assignments")),
    )
    with op.batch_alter_table("plan_assignments", schema=None) as batch_op:
        batch_op.create_index("ix_plan_assignments_program_scope", ["program_id", "scope"], unique=False)
        batch_op.create_index(batch_op.f("ix_plan_assignments_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_plan_assignments_plan_id"), ["plan_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("plan_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_assignments_plan_id"))
        batch_op.drop_index(batch_op.f("ix_plan_assignments_partner_id"))
        batch_op.drop_index("ix_plan_assignments_program_scope")
    op.drop_table("plan_assignments")
    with op.batch_alter_table("plan_versions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plan_versions_plan_id"))
    op.drop_table("plan_versions")
    with op.batch_alter_table("plans", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_plans_program_id"))
    op.drop_table("plans")
