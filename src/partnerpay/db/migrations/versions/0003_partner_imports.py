"""Partner imports: one row per CSV import, and on each imported partner the import and its file line

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 16:07:58.213443
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partner_imports",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=False),
        sa.Column("file_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_by_label", sa.String(length=320), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_partner_imports_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_imports")),
    )
    with op.batch_alter_table("partner_imports", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partner_imports_program_id"), ["program_id"], unique=False)

    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("import_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("import_row", sa.Integer(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_partners_import_id_partner_imports"), "partner_imports", ["import_id"], ["id"]
        )


def downgrade() -> None:
    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_partners_import_id_partner_imports"), type_="foreignkey")
        batch_op.drop_column("import_row")
        batch_op.drop_column("import_id")

    with op.batch_alter_table("partner_imports", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_imports_program_id"))

    op.drop_table("partner_imports")
