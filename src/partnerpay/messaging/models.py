"""Messaging tables: portal notifications, message threads, attachments, announcements, preferences, templates."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, UTCDateTime


class Notification(Base):
    """In-app notifications a partner sees in the portal; written by outbox jobs, never in a request."""

    __tablename__ = "notifications"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    kind: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    # The outbox job id: a job retried after a crash writes the notification once, not twice.
    job_id: Mapped[str] = mapped_column(String(40), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Attachment(Base):
    """An uploaded file: the bytes live on disk under their SHA-256, this row says whose they are."""

    __tablename__ = "attachments"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    # The partner the file concerns (partners see only their own); None for program-wide files.
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), index=True, default=None)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    content_type: Mapped[str] = mapped_column(String(64))  # the sniffed type, not the declared one
    filename: Mapped[str] = mapped_column(String(255))
    uploaded_side: Mapped[str] = mapped_column(String(16))  # staff | partner | system
    uploaded_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MessageThread(Base):
    """A conversation between a partner and the team: general, or about one deal or dispute."""

    __tablename__ = "message_threads"
    __table_args__ = (
        # One thread per deal or dispute; general threads have no topic id (NULLs never collide).
        UniqueConstraint("partner_id", "topic_type", "topic_id"),
        Index("ix_message_threads_program_last", "program_id", "last_message_at"),
        # The navigation's unread badge on every console page: only threads with unread messages are read.
        Index("ix_message_threads_staff_unread", "staff_unread", "program_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    topic_type: Mapped[str] = mapped_column(String(16))  # general | deal | dispute
    topic_id: Mapped[str | None] = mapped_column(String(40), default=None)
    subject: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime())
    message_count: Mapped[int] = mapped_column(Integer, default=0)
    # Read state per side: messages from the other side not yet seen (0 = read).
    staff_unread: Mapped[int] = mapped_column(Integer, default=0)
    partner_unread: Mapped[int] = mapped_column(Integer, default=0)


class ThreadMessage(Base):
    """One message in a thread; the body is plain text (escaped wherever it is shown)."""

    __tablename__ = "thread_messages"
    __table_args__ = (Index("ix_thread_messages_thread_created", "thread_id", "created_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    thread_id: Mapped[str] = mapped_column(ForeignKey("message_threads.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    author_side: Mapped[str] = mapped_column(String(16))  # staff | partner | system
    author_id: Mapped[str] = mapped_column(String(40))
    author_label: Mapped[str] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class MessageAttachment(Base):
    __tablename__ = "message_attachments"

    message_id: Mapped[str] = mapped_column(ForeignKey("thread_messages.id"), primary_key=True)
    attachment_id: Mapped[str] = mapped_column(ForeignKey("attachments.id"), primary_key=True, index=True)


class Announcement(Base):
    """A message from the team to every partner of a program, of a group or of a pilot."""

    __tablename__ = "announcements"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    group_id: Mapped[str | None] = mapped_column(ForeignKey("partner_groups.id"), default=None)
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    recipients: Mapped[int] = mapped_column(Integer, default=0)
    emailed: Mapped[int] = mapped_column(Integer, default=0)
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AnnouncementRecipient(Base):
    """Who an announcement reached (written with one INSERT … SELECT), and when they read it."""

    __tablename__ = "announcement_recipients"

    announcement_id: Mapped[str] = mapped_column(ForeignKey("announcements.id"), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True, index=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class NotificationPreference(Base):
    """A partner's choice for one kind of non-transactional mail; no row means subscribed."""

    __tablename__ = "notification_preferences"

    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(64), primary_key=True)
    subscribed: Mapped[bool] = mapped_column(Boolean)
    source: Mapped[str] = mapped_column(String(16))  # portal | unsubscribe_link | staff
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class NotificationTemplate(Base):
    """A program's own subject and body for one notification kind (the default applies without a row)."""

    __tablename__ = "notification_templates"
    __table_args__ = (UniqueConstraint("program_id", "kind"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    kind: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    updated_by: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LineNotice(Base):
    """A commission line the partner was told about ("on hold until"): each line is announced once."""

    __tablename__ = "commission_line_notices"

    line_id: Mapped[str] = mapped_column(ForeignKey("commission_lines.id"), primary_key=True)
    notified_at: Mapped[datetime] = mapped_column(UTCDateTime())
