"""Message threads indexed by the team's unread count (the console navigation's badge on every page)

Revision ID: 0026
Revises: 0025
Create Date: 2026-11-26 11:15:00
"""

from __future__ import annotations

from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_message_threads_staff_unread", "message_threads", ["staff_unread", "program_id"])


def downgrade() -> None:
    op.drop_index("ix_message_threads_staff_unread", table_name="message_threads")
