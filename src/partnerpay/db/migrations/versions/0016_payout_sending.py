"""Funding accounts and sending payouts through their rails (issue 7, parts 4, 5)

Revision ID: 0016
Revises: 0015
Create Date: 2026-11-26 04:00:00
"""

from __future__ import annotations

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
