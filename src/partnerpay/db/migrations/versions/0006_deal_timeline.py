"""Lead and deal timelines and update requests

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25 16:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deal_activity",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("lead_id", sa.String(length=40), nullable=True),
        sa.Column("deal_id", sa.String(length=40), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.String(length=40), nullable=False),
        sa.Column("actor_label", sa.String(length=320), nullable=False),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], name=op.f("fk_deal_activity_deal_id_deals")),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_deal_activity_lead_id_leads")),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_deal_activity_partner_id_partners")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_deal_activity_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deal_activity")),
    )
    with op.batch_alter_table("deal_activity", schema=None) as batch_op:
        batch_op.create_index("ix_deal_activity_deal_at", ["deal_id", "at"], unique=False)
        batch_op.create_index("ix_deal_activity_lead_at", ["lead_id", "at"], unique=False)

    op.create_table(
        "update_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("lead_id", sa.String(length=40), nullable=True),
        sa.Column("deal_id", sa.String(length=40), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("asked_by", sa.String(length=40), nullable=False),
        sa.Column("asked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("answered_by", sa.String(length=40), nullable=True),
        sa.Column("next_reminder_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminders_sent", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], name=op.f("fk_update_requests_deal_id_deals")),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_update_requests_lead_id_leads")),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_update_requests_partner_id_partners")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_update_requests_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_update_requests")),
    )
    with op.batch_alter_table("update_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_update_requests_deal_id"), ["deal_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_update_requests_lead_id"), ["lead_id"], unique=False)
        batch_op.create_index("ix_update_requests_partner_answered", ["partner_id", "answered_at"], unique=False)
    # Figures by day (tracking/stats): events of one type, leads registered and deals won in a date range.
    op.create_index("ix_events_program_type_occurred", "events", ["program_id", "type", "occurred_at"])
    op.create_index("ix_leads_program_created", "leads", ["program_id", "created_at"])
    op.create_index("ix_deals_program_won", "deals", ["program_id", "won_at"])


def downgrade() -> None:
    op.drop_index("ix_deals_program_won", table_name="deals")
    op.drop_index("ix_leads_program_created", table_name="leads")
    op.drop_index("ix_events_program_type_occurred", table_name="events")
    with op.batch_alter_table("update_requests", schema=None) as batch_op:
        batch_op.drop_index("ix_update_requests_partner_answered")
        batch_op.drop_index(batch_op.f("ix_update_requests_lead_id"))
        batch_op.drop_index(batch_op.f("ix_update_requests_deal_id"))
    op.drop_table("update_requests")
    with op.batch_alter_table("deal_activity", schema=None) as batch_op:
        batch_op.drop_index("ix_deal_activity_lead_at")
        batch_op.drop_index("ix_deal_activity_deal_at")
    op.drop_table("deal_activity")
