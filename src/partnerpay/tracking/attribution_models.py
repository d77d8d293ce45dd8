"""Attribution decisions, the clicks each customer's events named, and fraud flags."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, SerialKey, UTCDateTime


class Rule(StrEnum):
    """Why a customer belongs to a partner, strongest first (see tracking/attribution.decide)."""

    DEAL = "deal"
    COUPON = "coupon"
    FIRST_CLICK = "first_click"
    LAST_CLICK = "last_click"
    REFERRAL_CODE = "referral_code"
    PARTNER_ID = "partner_id"
    MANUAL = "manual"  # staff attributed the customer by hand (events/manual_attribution.py)


class Attribution(Base):
    """One decision: the customer belongs to the partner from decided_at until expires_at (None: for ever).

    Rows are never updated; a new decision after expiry is a new row, so the history says who had the
    customer when and why.
    """

    __tablename__ = "attributions"
    __table_args__ = (Index("ix_attributions_customer_decided", "customer_id", "decided_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    rule: Mapped[str] = mapped_column(String(16))
    # No foreign keys to clicks/events: clicks may arrive after the decision is referenced, and
    # events point back at attributions, which would make the two tables a cycle.
    click_id: Mapped[str | None] = mapped_column(String(40), default=None)
    coupon_id: Mapped[str | None] = mapped_column(ForeignKey("coupons.id"), default=None)
    lead_id: Mapped[str | None] = mapped_column(ForeignKey("leads.id"), default=None)
    deal_id: Mapped[str | None] = mapped_column(ForeignKey("deals.id"), default=None)
    reason: Mapped[str] = mapped_column(Text)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    event_id: Mapped[str] = mapped_column(String(40))
    self_referral: Mapped[bool] = mapped_column(Boolean, default=False)


class CustomerClick(Base):
    """A click id an event of this customer carried (`ref`). Kept even when the click is not (yet) in
    the clicks table: the redirect writes clicks in batches, so a later decision may find it."""

    __tablename__ = "customer_clicks"
    __table_args__ = (UniqueConstraint("customer_id", "click_id"),)

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.id"))
    click_id: Mapped[str] = mapped_column(String(40), index=True)
    event_id: Mapped[str] = mapped_column(String(40))  # the first event that named it
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FlagKind(StrEnum):
    IP_BURST = "ip_burst"
    CLICKS_WITHOUT_CONVERSIONS = "clicks_without_conversions"
    FAST_CONVERSION = "fast_conversion"
    SELF_REFERRAL = "self_referral"


class FlagStatus(StrEnum):
    OPEN = "open"
    RELEASED = "released"  # looked at, fine: a held event earns now
    DISMISSED = "dismissed"  # not fraud at all: same effect as released
    CONFIRMED = "confirmed"  # fraud: a held event never earns


class FraudFlag(Base):
    __tablename__ = "fraud_flags"
    __table_args__ = (
        Index("ix_fraud_flags_program_status", "program_id", "status"),
        Index("ix_fraud_flags_kind_key", "kind", "dedupe_key"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    event_id: Mapped[str | None] = mapped_column(ForeignKey("events.id"), default=None, index=True)
    click_id: Mapped[str | None] = mapped_column(String(40), default=None)
    kind: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text)
    # What makes two sweep findings "the same" (partner and ip hash, or the partner): a sweep does not
    # raise a finding again while an earlier flag for it is recent (see tracking/fraud.scan_clicks).
    dedupe_key: Mapped[str | None] = mapped_column(String(200), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=FlagStatus.OPEN.value)
    resolved_by: Mapped[str | None] = mapped_column(String(40), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
