"""Onboarding: program branding and terms, groups and pilots, invitations, payout and tax details,
notes, activity and prospects (server defaults fill the new NOT NULL columns of existing rows)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 14:07:32.651433
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "partner_groups",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("percent_bp", sa.Integer(), nullable=True),
        sa.Column("is_pilot", sa.Boolean(), nullable=False),
        sa.Column("size_cap", sa.Integer(), nullable=True),
        sa.Column("starts_on", sa.Date(), nullable=True),
        sa.Column("ends_on", sa.Date(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_partner_groups_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_groups")),
        sa.UniqueConstraint("program_id", "name", name=op.f("uq_partner_groups_program_id_name")),
    )
    with op.batch_alter_table("partner_groups", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partner_groups_program_id"), ["program_id"], unique=False)

    op.create_table(
        "program_terms",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body_markdown", sa.Text(), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_program_terms_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_program_terms")),
        sa.UniqueConstraint("program_id", "version", name=op.f("uq_program_terms_program_id_version")),
    )
    with op.batch_alter_table("program_terms", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_program_terms_program_id"), ["program_id"], unique=False)

    op.create_table(
        "invitations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_invitations_partner_id_partners")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_invitations_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invitations")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_invitations_token_hash")),
    )
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_invitations_partner_id"), ["partner_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_invitations_program_id"), ["program_id"], unique=False)

    op.create_table(
        "partner_activity",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("actor_id", sa.String(length=40), nullable=False),
        sa.Column("ref_type", sa.String(length=32), nullable=True),
        sa.Column("ref_id", sa.String(length=40), nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_partner_activity_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_activity")),
    )
    with op.batch_alter_table("partner_activity", schema=None) as batch_op:
        batch_op.create_index("ix_partner_activity_partner_at", ["partner_id", "at"], unique=False)

    op.create_table(
        "partner_notes",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("author_id", sa.String(length=40), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_partner_notes_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_partner_notes")),
    )
    with op.batch_alter_table("partner_notes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_partner_notes_partner_id"), ["partner_id"], unique=False)

    op.create_table(
        "payout_methods",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("details_encrypted", sa.Text(), nullable=False),
        sa.Column("masked", sa.JSON(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("replaced_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_payout_methods_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payout_methods")),
    )
    with op.batch_alter_table("payout_methods", schema=None) as batch_op:
        batch_op.create_index("ix_payout_methods_partner_active", ["partner_id", "active"], unique=False)

    op.create_table(
        "prospects",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("company", sa.String(length=200), nullable=False),
        sa.Column("contact_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("website", sa.String(length=500), nullable=True),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("stage", sa.String(length=16), nullable=False),
        sa.Column("next_step", sa.Text(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("owner_id", sa.String(length=40), nullable=True),
        sa.Column("partner_id", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["owner_id"], ["staff_users.id"], name=op.f("fk_prospects_owner_id_staff_users")),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_prospects_partner_id_partners")),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_prospects_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_prospects")),
    )
    with op.batch_alter_table("prospects", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_prospects_program_id"), ["program_id"], unique=False)

    op.create_table(
        "tax_profiles",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("form", sa.String(length=16), nullable=False),
        sa.Column("details_encrypted", sa.Text(), nullable=False),
        sa.Column("masked", sa.JSON(), nullable=False),
        sa.Column("valid", sa.Boolean(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_tax_profiles_partner_id_partners")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tax_profiles")),
    )
    with op.batch_alter_table("tax_profiles", schema=None) as batch_op:
        batch_op.create_index("ix_tax_profiles_partner_active", ["partner_id", "active"], unique=False)

    op.create_table(
        "terms_acceptances",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("terms_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("partner_user_id", sa.String(length=40), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name=op.f("fk_terms_acceptances_partner_id_partners")),
        sa.ForeignKeyConstraint(
            ["terms_id"], ["program_terms.id"], name=op.f("fk_terms_acceptances_terms_id_program_terms")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_terms_acceptances")),
        sa.UniqueConstraint("partner_id", "terms_id", name=op.f("uq_terms_acceptances_partner_id_terms_id")),
    )
    with op.batch_alter_table("terms_acceptances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_terms_acceptances_partner_id"), ["partner_id"], unique=False)

    with op.batch_alter_table("partner_users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("role", sa.String(length=16), nullable=False, server_default="owner"))
        batch_op.alter_column("password_hash", existing_type=sa.VARCHAR(length=200), nullable=True)

    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.add_column(sa.Column("company", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("legal_name", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("website", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("owner_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("source", sa.String(length=32), nullable=False, server_default="staff"))
        batch_op.add_column(sa.Column("application", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("status_reason", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("payout_review_until", sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index(batch_op.f("ix_partners_group_id"), ["group_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_partners_owner_id"), ["owner_id"], unique=False)
        batch_op.create_foreign_key(
            batch_op.f("fk_partners_group_id_partner_groups"), "partner_groups", ["group_id"], ["id"]
        )
        batch_op.create_foreign_key(batch_op.f("fk_partners_owner_id_staff_users"), "staff_users", ["owner_id"], ["id"])

    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("slug", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("brand_color", sa.String(length=7), nullable=False, server_default="#1f2a44"))
        batch_op.add_column(sa.Column("logo_url", sa.String(length=500), nullable=True))
        batch_op.add_column(sa.Column("application_form", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("auto_approve", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch_op.add_column(sa.Column("applications_open", sa.Boolean(), nullable=False, server_default=sa.true()))
        batch_op.add_column(sa.Column("default_owner_id", sa.String(length=40), nullable=True))
        batch_op.add_column(sa.Column("payout_change_hold_days", sa.Integer(), nullable=False, server_default="7"))
        batch_op.create_unique_constraint(batch_op.f("uq_programs_slug"), ["slug"])


def downgrade() -> None:
    with op.batch_alter_table("programs", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_programs_slug"), type_="unique")
        batch_op.drop_column("payout_change_hold_days")
        batch_op.drop_column("default_owner_id")
        batch_op.drop_column("applications_open")
        batch_op.drop_column("auto_approve")
        batch_op.drop_column("application_form")
        batch_op.drop_column("logo_url")
        batch_op.drop_column("brand_color")
        batch_op.drop_column("slug")

    with op.batch_alter_table("partners", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_partners_owner_id_staff_users"), type_="foreignkey")
        batch_op.drop_constraint(batch_op.f("fk_partners_group_id_partner_groups"), type_="foreignkey")
        batch_op.drop_index(batch_op.f("ix_partners_owner_id"))
        batch_op.drop_index(batch_op.f("ix_partners_group_id"))
        batch_op.drop_column("payout_review_until")
        batch_op.drop_column("status_changed_at")
        batch_op.drop_column("status_reason")
        batch_op.drop_column("application")
        batch_op.drop_column("source")
        batch_op.drop_column("owner_id")
        batch_op.drop_column("website")
        batch_op.drop_column("legal_name")
        batch_op.drop_column("company")

    with op.batch_alter_table("partner_users", schema=None) as batch_op:
        batch_op.alter_column("password_hash", existing_type=sa.VARCHAR(length=200), nullable=False)
        batch_op.drop_column("role")

    with op.batch_alter_table("terms_acceptances", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_terms_acceptances_partner_id"))

    op.drop_table("terms_acceptances")
    with op.batch_alter_table("tax_profiles", schema=None) as batch_op:
        batch_op.drop_index("ix_tax_profiles_partner_active")

    op.drop_table("tax_profiles")
    with op.batch_alter_table("prospects", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_prospects_program_id"))

    op.drop_table("prospects")
    with op.batch_alter_table("payout_methods", schema=None) as batch_op:
        batch_op.drop_index("ix_payout_methods_partner_active")

    op.drop_table("payout_methods")
    with op.batch_alter_table("partner_notes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_notes_partner_id"))

    op.drop_table("partner_notes")
    with op.batch_alter_table("partner_activity", schema=None) as batch_op:
        batch_op.drop_index("ix_partner_activity_partner_at")

    op.drop_table("partner_activity")
    with op.batch_alter_table("invitations", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_invitations_program_id"))
        batch_op.drop_index(batch_op.f("ix_invitations_partner_id"))

    op.drop_table("invitations")
    with op.batch_alter_table("program_terms", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_program_terms_program_id"))

    op.drop_table("program_terms")
    with op.batch_alter_table("partner_groups", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_partner_groups_program_id"))

    op.drop_table("partner_groups")
