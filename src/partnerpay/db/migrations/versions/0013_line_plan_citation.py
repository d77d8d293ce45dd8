"""Lines cite the plan version and rule that made them; a partner's recruiter for two-tier rules (issue 6)

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-26 01:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: lines of the program's default rate and manual adjustments come from no plan rule.
    with op.batch_alter_table("commission_lines", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_version_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("rule_number", sa.Integer(), nullable=True))
        batch_op.create_index("ix_commission_lines_plan_version_id", ["plan_version_id"], unique=False)
        batch_op.create_foreign_key(
            "fk_commission_lines_plan_version_id_plan_versions", "plan_versions", ["plan_version_id"], ["id"]
        )
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recruited_by_id", sa.String(length=40), nullable=True))
        batch_op.create_index("ix_partners_recruited_by_id", ["recruited_by_id"], unique=False)
        batch_op.create_foreign_key("fk_partners_recruited_by_id_partners", "partners", ["recruited_by_id"], ["id"])


def downgrade() -> None:
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_constraint("fk_partners_recruited_by_id_partners", type_="foreignkey")
        batch_op.drop_index("ix_partners_recruited_by_id")
        batch_op.drop_column("recruited_by_id")
    with op.batch_alter_table("commission_lines", schema=None) as batch_op:
        batch_op.drop_constraint("fk_commission_lines_plan_version_id_plan_versions", type_="foreignkey")
        batch_op.drop_index("ix_commission_lines_plan_version_id")
        batch_op.drop_column("rule_number")
        batch_op.drop_column("plan_version_id")
