"""Approval policies per program, maker-checker on lines and batches (issue 7, part 1)

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-26 04:00:00
"""

from __future__ import annotations

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
