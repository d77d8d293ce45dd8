"""Calendar feeds, Google Calendar and the audit view (issue 8 parts 6, 7)

Revision ID: 0023
Revises: 0022
Create Date: 2026-11-26 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calendar_feeds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("owner_type", sa.String(length=16), nullable=False),
        sa.Column("owner_id", sa.String(length=40), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_calendar_feeds"),
        sa.UniqueConstraint("token_hash", name="uq_calendar_feeds_token_hash"),
    )
    with op.batch_alter_table("calendar_feeds", schema=None) as batch_op:
        batch_op.create_index("ix_calendar_feeds_owner", ["owner_type", "owner_id"], unique=False)
    op.create_table(
        "google_calendar_links",
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=True),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("access_expires_at", _TS, nullable=True),
        sa.Column("last_synced_at", _TS, nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name="fk_google_calendar_links_program_id_programs"),
        sa.PrimaryKeyConstraint("program_id", name="pk_google_calendar_links"),
    )
    op.create_table(
        "google_calendar_events",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("item_key", sa.String(length=120), nullable=False),
        sa.Column("event_id", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("synced_at", _TS, nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name="fk_google_calendar_events_program_id_programs"),
        sa.PrimaryKeyConstraint("id", name="pk_google_calendar_events"),
        sa.UniqueConstraint("program_id", "item_key", name="uq_google_calendar_events_program_id_item_key"),
    )
    # The audit view searches by actor and by action, newest first (object and program have indexes already).
    op.create_index("ix_audit_actor", "audit_log", ["actor_id", "seq"], unique=False)
    op.create_index("ix_audit_action", "audit_log", ["action", "seq"], unique=False)
    op.create_table(
        "audit_chain_checks",
        sa.Column("name", sa.String(length=16), nullable=False),
        sa.Column("last_seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.Column("rows_checked", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("problems", sa.JSON(), nullable=False),
        sa.Column("checked_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_audit_chain_checks"),
    )


def downgrade() -> None:
    op.drop_table("audit_chain_checks")
    op.drop_index("ix_audit_action", table_name="audit_log")
    op.drop_index("ix_audit_actor", table_name="audit_log")
    op.drop_table("google_calendar_events")
    op.drop_table("google_calendar_links")
    with op.batch_alter_table("calendar_feeds", schema=None) as batch_op:
        batch_op.drop_index("ix_calendar_feeds_owner")
    op.drop_table("calendar_feeds")
