"""Leads partners register and the deals accepted leads become."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, UTCDateTime


class LeadStatus:
    REGISTERED = "registered"
    ACCEPTED = "accepted"
    REJECTED = "rejected"


class Lead(Base):
    """A prospect a partner registered. Conflicts are flagged on it (never dropped); acceptance protects
    its domain for the program's lead_protection_days."""

    __tablename__ = "leads"
    __table_args__ = (
        Index("ix_leads_program_domain", "program_id", "domain"),
        Index("ix_leads_program_company", "program_id", "company_key"),
        Index("ix_leads_program_created", "program_id", "created_at"),  # leads registered by day
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    company: Mapped[str] = mapped_column(String(200))
    company_key: Mapped[str] = mapped_column(String(200))  # normalised name: lower case, no legal suffix
    domain: Mapped[str | None] = mapped_column(String(253), default=None)  # normalised: no scheme, no www.
    contact_name: Mapped[str | None] = mapped_column(String(200), default=None)
    contact_email: Mapped[str | None] = mapped_column(String(320), default=None)
    expected_value: Mapped[int | None] = mapped_column(BigInteger, default=None)  # minor units
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    notes: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=LeadStatus.REGISTERED)
    reason: Mapped[str | None] = mapped_column(Text, default=None)  # why rejected
    # [{kind: existing_customer | other_partner_lead | crm_deal | own_domain, ref_type, ref_id, detail}]
    conflicts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    protected_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(40))
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    decided_by: Mapped[str | None] = mapped_column(String(40), default=None)
    last_update_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Deal(Base):
    """An opportunity moving through the program's pipeline; `won` with an amount becomes a deal_won event."""

    __tablename__ = "deals"
    __table_args__ = (
        UniqueConstraint("program_id", "crm_id"),
        Index("ix_deals_program_domain", "program_id", "domain"),
        Index("ix_deals_program_won", "program_id", "won_at"),  # deals won by day
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    lead_id: Mapped[str | None] = mapped_column(ForeignKey("leads.id"), unique=True, default=None)
    company: Mapped[str] = mapped_column(String(200))
    domain: Mapped[str | None] = mapped_column(String(253), default=None)
    stage: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | won | lost
    amount: Mapped[int | None] = mapped_column(BigInteger, default=None)  # minor units
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    crm_id: Mapped[str | None] = mapped_column(String(200), default=None)  # HubSpot deal id
    customer_external_id: Mapped[str | None] = mapped_column(String(200), default=None)
    lost_reason: Mapped[str | None] = mapped_column(Text, default=None)
    won_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    event_id: Mapped[str | None] = mapped_column(ForeignKey("events.id"), default=None)  # the deal_won event
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_update_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DealActivity(Base):
    """One line of a lead's or deal's timeline: registered, decided, stage moves, update requests and answers.

    A deal's lines also carry its lead_id, so the lead's history and the deal's read as one timeline.
    """

    __tablename__ = "deal_activity"
    __table_args__ = (
        Index("ix_deal_activity_lead_at", "lead_id", "at"),
        Index("ix_deal_activity_deal_at", "deal_id", "at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    lead_id: Mapped[str | None] = mapped_column(ForeignKey("leads.id"), default=None)
    deal_id: Mapped[str | None] = mapped_column(ForeignKey("deals.id"), default=None)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[str] = mapped_column(String(40))
    actor_label: Mapped[str] = mapped_column(String(320), default="")


class UpdateRequest(Base):
    """Staff asked the partner for news on a lead or deal; reminded every update_reminder_days until answered."""

    __tablename__ = "update_requests"
    __table_args__ = (Index("ix_update_requests_partner_answered", "partner_id", "answered_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    lead_id: Mapped[str | None] = mapped_column(ForeignKey("leads.id"), index=True, default=None)
    deal_id: Mapped[str | None] = mapped_column(ForeignKey("deals.id"), index=True, default=None)
    message: Mapped[str] = mapped_column(Text)
    asked_by: Mapped[str] = mapped_column(String(40))
    asked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    answer: Mapped[str | None] = mapped_column(Text, default=None)
    answered_by: Mapped[str | None] = mapped_column(String(40), default=None)
    next_reminder_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
