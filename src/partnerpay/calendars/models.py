"""Calendar feeds (secret ICS URLs per user) and the Google Calendar connection and events of a program."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, UTCDateTime


class CalendarFeed(Base):
    """One secret feed URL of a staff user or a partner user; only a SHA-256 of the token is kept.

    Rotating revokes the old row and makes a new one, so an old URL is 404 at once.
    """

    __tablename__ = "calendar_feeds"
    __table_args__ = (Index("ix_calendar_feeds_owner", "owner_type", "owner_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    owner_type: Mapped[str] = mapped_column(String(16))  # staff | partner_user
    owner_id: Mapped[str] = mapped_column(String(40))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class GoogleCalendarLink(Base):
    """A program's OAuth state with Google: the pending consent (state hash, sealed PKCE verifier and code),
    the short-lived access token (sealed) and how the last sync went. The refresh token lives with the
    program's other integration secrets (program_integrations, provider google_calendar)."""

    __tablename__ = "google_calendar_links"

    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))  # consent_asked | exchanging | connected | failed
    state_hash: Mapped[str | None] = mapped_column(String(64), default=None)
    sealed: Mapped[str] = mapped_column(Text)  # {code_verifier?, code?, access_token?}
    access_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_synced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class GoogleCalendarEvent(Base):
    """One partnerpay item mirrored as a Google event: its deterministic event id and what was last sent,
    so a sync only patches what changed and a retried insert never duplicates."""

    __tablename__ = "google_calendar_events"
    __table_args__ = (UniqueConstraint("program_id", "item_key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    item_key: Mapped[str] = mapped_column(String(120))  # e.g. payout-run:2026-02-01T08:00, deal:deal_x
    event_id: Mapped[str] = mapped_column(String(64))  # base32hex, sent as the event's id on insert
    content_hash: Mapped[str] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16))  # created | deleted
    synced_at: Mapped[datetime] = mapped_column(UTCDateTime())
