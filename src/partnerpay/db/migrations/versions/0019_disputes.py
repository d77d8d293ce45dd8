"""Disputes (issue 8 part 2)

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-26 07:30:00
"""

from __future__ import annotations

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled in by the issue 8 part that owns this slot


def downgrade() -> None:
    pass
