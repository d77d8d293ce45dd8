"""Customers attributed to partners, and the revenue/lifecycle events that happen to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, SerialKey, UTCDateTime


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("program_id", "external_id"),
        Index("ix_customers_program_status", "program_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    external_id: Mapped[str] = mapped_column(String(200))
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), index=True)
    attribution: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The current decision (tracking.attribution_models.Attribution) and until when it holds (None: for
    # ever). No foreign key: attributions point at customers, and a cycle would order every insert.
    attribution_id: Mapped[str | None] = mapped_column(String(40), default=None)
    attributed_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # As the events told us (latest wins): deal domains and self-referral checks compare these.
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    domain: Mapped[str | None] = mapped_column(String(253), default=None)
    # Lifecycle (events/lifecycle.py): derived from the customer's events in the order they happened,
    # so the same events arriving in any order leave the same status and revenue.
    status: Mapped[str] = mapped_column(String(16), default="lead", server_default="lead")
    # Paid minus refunded and charged back, in the program currency.
    lifetime_revenue: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    first_paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    last_event_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class Event(Base):
    __tablename__ = "events"
    __table_args__ = (
        UniqueConstraint("program_id", "external_id"),
        Index("ix_events_customer_type", "customer_id", "type"),
        # Figures by day (tracking/stats) read one program's events of one type in a date range.
        Index("ix_events_program_type_occurred", "program_id", "type", "occurred_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    type: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), index=True)
    amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    product: Mapped[str | None] = mapped_column(String(200), default=None)
    original_event_id: Mapped[str | None] = mapped_column(ForeignKey("events.id"), default=None)
    metadata_json: Mapped[dict[str, Any] | None] = mapped_column("metadata", JSON, default=None)
    # SHA-256 of the canonical request: the same external_id with other content is a 409, not a replay.
    content_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The attribution the event's partner came from, the click id (`ref`) it carried, and, when it
    # has no partner, why not (an unknown click id, an expired attribution, ...).
    attribution_id: Mapped[str | None] = mapped_column(String(40), default=None)
    click_id: Mapped[str | None] = mapped_column(String(40), default=None)
    unattributed_reason: Mapped[str | None] = mapped_column(String(500), default=None)


class RefundAllocation(Base):
    """How much of a paying event a refund or chargeback took back (one refund may span several)."""

    __tablename__ = "refund_allocations"

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    refund_event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    original_event_id: Mapped[str] = mapped_column(ForeignKey("events.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
