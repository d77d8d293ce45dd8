"""Inbox of incoming facts, provider payments, program integrations

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 17:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SERIAL = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "inbox_items",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("source", sa.String(length=80), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("headers", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("waiting_for", sa.String(length=200), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_ids", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_inbox_items_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inbox_items")),
        sa.UniqueConstraint("source", "external_id", name=op.f("uq_inbox_items_source_external_id")),
    )
    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.create_index("ix_inbox_items_program_status", ["program_id", "status", "received_at"], unique=False)
        batch_op.create_index("ix_inbox_items_waiting", ["program_id", "waiting_for"], unique=False)

    op.create_table(
        "provider_payments",
        sa.Column("id", SERIAL, autoincrement=True, nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("payment_id", sa.String(length=200), nullable=False),
        sa.Column("charge_id", sa.String(length=200), nullable=True),
        sa.Column("payment_intent_id", sa.String(length=200), nullable=True),
        sa.Column("event_external_id", sa.String(length=200), nullable=False),
        sa.Column("gross", sa.BigInteger(), nullable=False),
        sa.Column("net", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name=op.f("fk_provider_payments_program_id_programs")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_provider_payments")),
        sa.UniqueConstraint(
            "program_id", "provider", "payment_id", name=op.f("uq_provider_payments_program_id_provider_payment_id")
        ),
    )
    with op.batch_alter_table("provider_payments", schema=None) as batch_op:
        batch_op.create_index("ix_provider_payments_charge", ["program_id", "provider", "charge_id"], unique=False)

    op.create_table(
        "program_integrations",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("sealed", sa.Text(), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("bad_signatures", sa.Integer(), nullable=False),
        sa.Column("last_bad_signature_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["program_id"], ["programs.id"], name=op.f("fk_program_integrations_program_id_programs")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_program_integrations")),
        sa.UniqueConstraint("program_id", "provider", name=op.f("uq_program_integrations_program_id_provider")),
    )


def downgrade() -> None:
    op.drop_table("program_integrations")
    with op.batch_alter_table("provider_payments", schema=None) as batch_op:
        batch_op.drop_index("ix_provider_payments_charge")
    op.drop_table("provider_payments")
    with op.batch_alter_table("inbox_items", schema=None) as batch_op:
        batch_op.drop_index("ix_inbox_items_waiting")
        batch_op.drop_index("ix_inbox_items_program_status")
    op.drop_table("inbox_items")
