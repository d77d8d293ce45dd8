"""Tracking and deals: referral links, clicks, coupons, leads, deals, and the program settings they use
(server defaults fill the new NOT NULL program columns of existing rows)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 16:18:54.274787
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "coupons",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("code_key", sa.String(length=100), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("provider_id", sa.String(length=200), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_coupons_partner_id_partners")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_coupons_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_coupons")),
        sa.UniqueConstraint("program_id", "code_key", name=op.f("uq_coupons_program_id_code_key")),
        sa.UniqueConstraint(
            "program_id", "source", "provider_id", name=op.f("uq_coupons_program_id_source_provider_id")
        ),
    )
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_coupons_partner_id"), ["partner_id"], unique=False)

    op.create_table(
        "leads",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("company", sa.String(length=200), nullable=False),
        sa.Column("company_key", sa.String(length=200), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=True),
        sa.Column("contact_name", sa.String(length=200), nullable=True),
        sa.Column("contact_email", sa.String(length=320), nullable=True),
        sa.Column("expected_value", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("conflicts", sa.JSON(), nullable=True),
        sa.Column("protected_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_by", sa.String(length=40), nullable=True),
        sa.Column("last_update_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_leads_partner_id_partners")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_leads_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
    )
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_leads_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index("ix_leads_program_company", ["program_id", "company_key"], unique=False)
        batch_op.create_index("ix_leads_program_domain", ["program_id", "domain"], unique=False)

    op.create_table(
        "referral_links",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("campaign", sa.String(length=100), nullable=True),
        sa.Column("destination_url", sa.String(length=2000), nullable=True),
        sa.Column("params", sa.JSON(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_referral_links_partner_id_partners")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_referral_links_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_referral_links")),
        sa.UniqueConstraint("code", name=op.f("uq_referral_links_code")),
    )
    with op.batch_alter_table("referral_links", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_referral_links_partner_id"), ["partner_id"], unique=False)

    op.create_table(
        "clicks",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=True),
        sa.Column("partner_id", sa.String(length=40), nullable=True),
        sa.Column("link_id", sa.String(length=40), nullable=True),
        sa.Column("code", sa.String(length=100), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ip_hash", sa.String(length=64), nullable=True),
        sa.Column("ua_class", sa.String(length=16), nullable=False),
        sa.Column("referrer", sa.String(length=500), nullable=True),
        sa.Column("country", sa.String(length=2), nullable=True),
        sa.Column("destination", sa.String(length=2000), nullable=False),
        sa.ForeignKeyConstraint(["link_id"], ["referral_links.id"], name=op.f("fk_clicks_link_id_referral_links")),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_clicks_partner_id_partners")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_clicks_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clicks")),
    )
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.create_index("ix_clicks_ip_at", ["ip_hash", "at"], unique=False)
        batch_op.create_index("ix_clicks_partner_at", ["partner_id", "at"], unique=False)
        batch_op.create_index("ix_clicks_program_at", ["program_id", "at"], unique=False)

    op.create_table(
        "deals",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("lead_id", sa.String(length=40), nullable=True),
        sa.Column("company", sa.String(length=200), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=True),
        sa.Column("stage", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("crm_id", sa.String(length=200), nullable=True),
        sa.Column("customer_external_id", sa.String(length=200), nullable=True),
        sa.Column("lost_reason", sa.Text(), nullable=True),
        sa.Column("won_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_update_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_deals_event_id_events")),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_deals_lead_id_leads")),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_deals_partner_id_partners")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_deals_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deals")),
        sa.UniqueConstraint("lead_id", name=op.f("uq_deals_lead_id")),
        sa.UniqueConstraint("program_id", "crm_id", name=op.f("uq_deals_program_id_crm_id")),
    )
    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_deals_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index("ix_deals_program_domain", ["program_id", "domain"], unique=False)

    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("site_url", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("fallback_url", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("allowed_domains", sa.JSON(), nullable=True))
        batch_op.add_column(
            sa.Column("attribution_model", sa.String(length=16), nullable=False, server_default="last_click")
        )
        batch_op.add_column(sa.Column("coupon_overrides_link", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("attribution_months", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("lead_protection_days", sa.Integer(), nullable=False, server_default="90"))
        batch_op.add_column(sa.Column("deal_stages", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("update_reminder_days", sa.Integer(), nullable=False, server_default="3"))
        batch_op.add_column(sa.Column("hold_flagged_events", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.drop_column("hold_flagged_events")
        batch_op.drop_column("update_reminder_days")
        batch_op.drop_column("deal_stages")
        batch_op.drop_column("lead_protection_days")
        batch_op.drop_column("attribution_months")
        batch_op.drop_column("coupon_overrides_link")
        batch_op.drop_column("attribution_model")
        batch_op.drop_column("allowed_domains")
        batch_op.drop_column("fallback_url")
        batch_op.drop_column("site_url")

    with op.batch_alter_table("deals", schema=None) as batch_op:
        batch_op.drop_index("ix_deals_program_domain")
        batch_op.drop_index(batch_op.f("ix_deals_partner_id"))

    op.drop_table("deals")
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.drop_index("ix_clicks_program_at")
        batch_op.drop_index("ix_clicks_partner_at")
        batch_op.drop_index("ix_clicks_ip_at")

    op.drop_table("clicks")
    with op.batch_alter_table("referral_links", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_referral_links_partner_id"))

    op.drop_table("referral_links")
    with op.batch_alter_table("leads", schema=None) as batch_op:
        batch_op.drop_index("ix_leads_program_domain")
        batch_op.drop_index("ix_leads_program_company")
        batch_op.drop_index(batch_op.f("ix_leads_partner_id"))

    op.drop_table("leads")
    with op.batch_alter_table("coupons", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_coupons_partner_id"))

    op.drop_table("coupons")
