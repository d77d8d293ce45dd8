"""Commission lines indexed by partner alone (a payout run no longer rewrites this index per line)

Revision ID: 0024
Revises: 0023
Create Date: 2026-11-26 07:45:00
"""

from __future__ import annotations

from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain CREATE/DROP INDEX, not batch_alter_table: on SQLite a batch rebuild would copy the table.
    op.create_index("ix_lines_partner", "commission_lines", ["partner_id"], unique=False)
    op.drop_index("ix_lines_partner_status", table_name="commission_lines")


def downgrade() -> None:
    op.create_index("ix_lines_partner_status", "commission_lines", ["partner_id", "status"], unique=False)
    op.drop_index("ix_lines_partner", table_name="commission_lines")
