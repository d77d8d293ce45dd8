"""Attribution decisions and fraud flags

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 16:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "customer_clicks",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("click_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["customer_id"], ["customers.id"], name=op.f("fk_customer_clicks_customer_id_customers")
        ),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_customer_clicks_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_customer_clicks")),
        sa.UniqueConstraint("customer_id", "click_id", name=op.f("uq_customer_clicks_customer_id_click_id")),
    )
    with op.batch_alter_table("customer_clicks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_customer_clicks_click_id"), ["click_id"], unique=False)

    op.create_table(
        "fraud_flags",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("event_id", sa.String(length=40), nullable=True),
        sa.Column("click_id", sa.String(length=40), nullable=True),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("resolved_by", sa.String(length=40), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_fraud_flags_event_id_events")),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_fraud_flags_partner_id_partners")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_fraud_flags_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fraud_flags")),
    )
    with op.batch_alter_table("fraud_flags", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_fraud_flags_event_id"), ["event_id"], unique=False)
        batch_op.create_index("ix_fraud_flags_kind_key", ["kind", "dedupe_key"], unique=False)
        batch_op.create_index(batch_op.f("ix_fraud_flags_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index("ix_fraud_flags_program_status", ["program_id", "status"], unique=False)

    op.create_table(
        "attributions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("customer_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("rule", sa.String(length=16), nullable=False),
        sa.Column("click_id", sa.String(length=40), nullable=True),
        sa.Column("coupon_id", sa.String(length=40), nullable=True),
        sa.Column("lead_id", sa.String(length=40), nullable=True),
        sa.Column("deal_id", sa.String(length=40), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_id", sa.String(length=40), nullable=False),
        sa.Column("self_referral", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(["coupon_id"], ["coupons.id"], name=op.f("fk_attributions_coupon_id_coupons")),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"], name=op.f("fk_attributions_customer_id_customers")),
        sa.ForeignKeyConstraint(["deal_id"], ["deals.id"], name=op.f("fk_attributions_deal_id_deals")),
        sa.ForeignKeyConstraint(["lead_id"], ["leads.id"], name=op.f("fk_attributions_lead_id_leads")),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_attributions_partner_id_partners")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_attributions_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attributions")),
    )
    with op.batch_alter_table("attributions", schema=None) as batch_op:
        batch_op.create_index("ix_attributions_customer_decided", ["customer_id", "decided_at"], unique=False)
        batch_op.create_index(batch_op.f("ix_attributions_partner_id"), ["partner_id"], unique=False)

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attribution_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("attributed_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("email", sa.String(length=320), nullable=True))
        batch_op.add_column(sa.Column("domain", sa.String(length=253), nullable=True))

    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attribution_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("click_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("unattributed_reason", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("events", schema=None) as batch_op:
        batch_op.drop_column("unattributed_reason")
        batch_op.drop_column("click_id")
        batch_op.drop_column("attribution_id")

    with op.batch_alter_table("customers", schema=None) as batch_op:
        batch_op.drop_column("domain")
        batch_op.drop_column("email")
        batch_op.drop_column("attributed_until")
        batch_op.drop_column("attribution_id")

    with op.batch_alter_table("attributions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_attributions_partner_id"))
        batch_op.drop_index("ix_attributions_customer_decided")
    op.drop_table("attributions")

    with op.batch_alter_table("fraud_flags", schema=None) as batch_op:
        batch_op.drop_index("ix_fraud_flags_program_status")
        batch_op.drop_index(batch_op.f("ix_fraud_flags_partner_id"))
        batch_op.drop_index("ix_fraud_flags_kind_key")
        batch_op.drop_index(batch_op.f("ix_fraud_flags_event_id"))
    op.drop_table("fraud_flags")

    with op.batch_alter_table("customer_clicks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_clicks_click_id"))
    op.drop_table("customer_clicks")
