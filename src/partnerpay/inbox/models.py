"""The inbox (raw facts as delivered), what the payments they produced are called at the provider,
and the per-program provider integrations (encrypted credentials, delivery health)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, SerialKey, UTCDateTime


class InboxStatus(StrEnum):
    RECEIVED = "received"  # stored, its processing job queued
    PROCESSED = "processed"  # turned into events (event_ids)
    WAITING = "waiting"  # needs another fact first (waiting_for); woken when that fact is processed
    FAILED = "failed"  # last_error says why; a person retries it
    IGNORED = "ignored"  # nothing to do for partnerpay (note says why)


class InboxItem(Base):
    """One delivery of one fact. (source, external_id) is unique: a redelivery is a no-op."""

    __tablename__ = "inbox_items"
    __table_args__ = (
        UniqueConstraint("source", "external_id"),
        Index("ix_inbox_items_program_status", "program_id", "status", "received_at"),
        Index("ix_inbox_items_waiting", "program_id", "waiting_for"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    # "stripe:{program_id}" and so on: one provider account per program, so ids never collide across programs.
    source: Mapped[str] = mapped_column(String(80))
    provider: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(100))  # the provider's event type (invoice.paid, ...)
    body: Mapped[str] = mapped_column(Text)  # exactly as received (signatures cover these bytes)
    headers: Mapped[dict[str, Any]] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    waiting_for: Mapped[str | None] = mapped_column(String(200), default=None)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    event_ids: Mapped[list[str]] = mapped_column(JSON, default=list)


class ProviderPayment(Base):
    """A paying provider object (Stripe invoice) and the partnerpay event it became, so that refunds and
    disputes, which name a charge or an invoice, find the event they reverse and its tax-free share."""

    __tablename__ = "provider_payments"
    __table_args__ = (
        UniqueConstraint("program_id", "provider", "payment_id"),
        Index("ix_provider_payments_charge", "program_id", "provider", "charge_id"),
    )

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    provider: Mapped[str] = mapped_column(String(32))
    payment_id: Mapped[str] = mapped_column(String(200))  # Stripe invoice id (in_…)
    charge_id: Mapped[str | None] = mapped_column(String(200), default=None)
    payment_intent_id: Mapped[str | None] = mapped_column(String(200), default=None)
    event_external_id: Mapped[str] = mapped_column(String(200))
    gross: Mapped[int] = mapped_column(BigInteger)  # what the customer paid, tax included
    net: Mapped[int] = mapped_column(BigInteger)  # what the event counts (net of tax when configured)
    currency: Mapped[str] = mapped_column(String(3))


class ProgramIntegration(Base):
    """A program's credentials for one provider (sealed with SecretBox), its settings and delivery health."""

    __tablename__ = "program_integrations"
    __table_args__ = (UniqueConstraint("program_id", "provider"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    provider: Mapped[str] = mapped_column(String(32))
    # {"webhook_secrets": [{"secret", "expires_at"}], "api_key", "client_secret"}: never stored in clear.
    sealed: Mapped[str] = mapped_column(Text)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)  # not secret: net_of_tax, client_id, base_url
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Health: bad signatures are counted here, never stored as facts. (Good deliveries are the inbox
    # itself; a counter here would make every delivery of a program queue on this one row.)
    bad_signatures: Mapped[int] = mapped_column(Integer, default=0)
    last_bad_signature_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
