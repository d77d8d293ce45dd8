"""Weekly reports and dashboard rollups (issue 8 parts 5, 8)

Revision ID: 0022
Revises: 0021
Create Date: 2026-11-26 07:30:00
"""

from __future__ import annotations

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled in by the issue 8 part that owns this slot


def downgrade() -> None:
    pass
