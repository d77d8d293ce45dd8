"""Reconciliation, returns, tax reports and the partner's payout timeline (issue 7, parts 6, 8, 9)

Revision ID: 0017
Revises: 0016
Create Date: 2026-11-26 04:00:00
"""

from __future__ import annotations

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
