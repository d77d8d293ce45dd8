"""Smart alerts and outgoing webhooks (issue 8 parts 4, 9)

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-26 07:30:00
"""

from __future__ import annotations

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass  # filled in by the issue 8 part that owns this slot


def downgrade() -> None:
    pass
