"""Communications: threads, announcements, preferences, templates (issue 8 part 3)

Revision ID: 0020
Revises: 0019
Create Date: 2026-11-26 07:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "attachments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("content_type", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("uploaded_side", sa.String(length=16), nullable=False),
        sa.Column("uploaded_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name="fk_attachments_partner_id_partners"),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name="fk_attachments_program_id_programs"),
        sa.PrimaryKeyConstraint("id", name="pk_attachments"),
    )
    op.create_index("ix_attachments_partner_id", "attachments", ["partner_id"], unique=False)
    op.create_index("ix_attachments_program_id", "attachments", ["program_id"], unique=False)
    op.create_index("ix_attachments_sha256", "attachments", ["sha256"], unique=False)

    op.create_table(
        "message_threads",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("topic_type", sa.String(length=16), nullable=False),
        sa.Column("topic_id", sa.String(length=40), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("last_message_at", TZ, nullable=False),
        sa.Column("message_count", sa.Integer(), nullable=False),
        sa.Column("staff_unread", sa.Integer(), nullable=False),
        sa.Column("partner_unread", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name="fk_message_threads_partner_id_partners"),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name="fk_message_threads_program_id_programs"),
        sa.PrimaryKeyConstraint("id", name="pk_message_threads"),
        sa.UniqueConstraint(
            "partner_id", "topic_type", "topic_id", name="uq_message_threads_partner_id_topic_type_topic_id"
        ),
    )
    op.create_index("ix_message_threads_partner_id", "message_threads", ["partner_id"], unique=False)
    op.create_index(
        "ix_message_threads_program_last", "message_threads", ["program_id", "last_message_at"], unique=False
    )

    op.create_table(
        "thread_messages",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("thread_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("author_side", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.String(length=40), nullable=False),
        sa.Column("author_label", sa.String(length=320), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name="fk_thread_messages_partner_id_partners"),
        sa.ForeignKeyConstraint(
            ["thread_id"], ["message_threads.id"], name="fk_thread_messages_thread_id_message_threads"
        ),
        sa.PrimaryKeyConstraint("id", name="pk_thread_messages"),
    )
    op.create_index("ix_thread_messages_thread_created", "thread_messages", ["thread_id", "created_at"], unique=False)

    op.create_table(
        "message_attachments",
        sa.Column("message_id", sa.String(length=40), nullable=False),
        sa.Column("attachment_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["attachment_id"], ["attachments.id"], name="fk_message_attachments_attachment_id_attachments"
        ),
        sa.ForeignKeyConstraint(
            ["message_id"], ["thread_messages.id"], name="fk_message_attachments_message_id_thread_messages"
        ),
        sa.PrimaryKeyConstraint("message_id", "attachment_id", name="pk_message_attachments"),
    )
    op.create_index("ix_message_attachments_attachment_id", "message_attachments", ["attachment_id"], unique=False)

    op.create_table(
        "announcements",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("group_id", sa.String(length=40), nullable=True),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("recipients", sa.Integer(), nullable=False),
        sa.Column("emailed", sa.Integer(), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["partner_groups.id"], name="fk_announcements_group_id_partner_groups"),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name="fk_announcements_program_id_programs"),
        sa.PrimaryKeyConstraint("id", name="pk_announcements"),
    )
    op.create_index("ix_announcements_program_id", "announcements", ["program_id"], unique=False)

    op.create_table(
        "announcement_recipients",
        sa.Column("announcement_id", sa.String(length=40), nullable=False),
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("read_at", TZ, nullable=True),
        sa.ForeignKeyConstraint(
            ["announcement_id"],
            ["announcements.id"],
            name="fk_announcement_recipients_announcement_id_announcements",
        ),
        sa.ForeignKeyConstraint(["partner_id"], ["partners.id"], name="fk_announcement_recipients_partner_id_partners"),
        sa.PrimaryKeyConstraint("announcement_id", "partner_id", name="pk_announcement_recipients"),
    )
    op.create_index("ix_announcement_recipients_partner_id", "announcement_recipients", ["partner_id"], unique=False)

    op.create_table(
        "notification_preferences",
        sa.Column("partner_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("subscribed", sa.Boolean(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["partner_id"], ["partners.id"], name="fk_notification_preferences_partner_id_partners"
        ),
        sa.PrimaryKeyConstraint("partner_id", "kind", name="pk_notification_preferences"),
    )

    op.create_table(
        "notification_templates",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("program_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=64), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("updated_by", sa.String(length=40), nullable=False),
        sa.Column("updated_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(["program_id"], ["programs.id"], name="fk_notification_templates_program_id_programs"),
        sa.PrimaryKeyConstraint("id", name="pk_notification_templates"),
        sa.UniqueConstraint("program_id", "kind", name="uq_notification_templates_program_id_kind"),
    )

    op.create_table(
        "commission_line_notices",
        sa.Column("line_id", sa.String(length=40), nullable=False),
        sa.Column("notified_at", TZ, nullable=False),
        sa.ForeignKeyConstraint(
            ["line_id"], ["commission_lines.id"], name="fk_commission_line_notices_line_id_commission_lines"
        ),
        sa.PrimaryKeyConstraint("line_id", name="pk_commission_line_notices"),
    )


def downgrade() -> None:
    op.drop_table("commission_line_notices")
    op.drop_table("notification_templates")
    op.drop_table("notification_preferences")
    op.drop_index("ix_announcement_recipients_partner_id", table_name="announcement_recipients")
    op.drop_table("announcement_recipients")
    op.drop_index("ix_announcements_program_id", table_name="announcements")
    op.drop_table("announcements")
    op.drop_index("ix_message_attachments_attachment_id", table_name="message_attachments")
    op.drop_table("message_attachments")
    op.drop_index("ix_thread_messages_thread_created", table_name="thread_messages")
    op.drop_table("thread_messages")
    op.drop_index("ix_message_threads_program_last", table_name="message_threads")
    op.drop_index("ix_message_threads_partner_id", table_name="message_threads")
    op.drop_table("message_threads")
    op.drop_index("ix_attachments_sha256", table_name="attachments")
    op.drop_index("ix_attachments_program_id", table_name="attachments")
    op.drop_index("ix_attachments_partner_id", table_name="attachments")
    op.drop_table("attachments")
