"""Calendar feeds, Google Calendar and the audit view (issue 8 parts 6, 7)

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-26 07:30:00
"""

from __future__ import annotations

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled in by the issue 8 part that owns this slot


def downgrade() -> None:
    pass
