"""Payout schedules, minimum thresholds and multi-currency runs (issue 7, parts 2, 3, 7)

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-26 04:00:00
"""

from __future__ import annotations

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
