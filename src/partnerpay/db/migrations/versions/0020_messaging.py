"""Communications: threads, announcements, preferences, templates (issue 8 part 3)

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-26 07:30:00
"""

from __future__ import annotations

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled in by the issue 8 part that owns this slot


def downgrade() -> None:
    pass
