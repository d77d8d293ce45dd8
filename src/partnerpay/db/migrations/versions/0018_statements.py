"""Statements (issue 8 part 1)

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-26 07:30:00
"""

from __future__ import annotations

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled in by the issue 8 part that owns this slot


def downgrade() -> None:
    pass
