"""Partners of a program and their portal users."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, UTCDateTime


class PartnerStatus(StrEnum):
    APPLIED = "applied"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    TERMINATED = "terminated"
    DECLINED = "declined"


class Partner(Base):
    __tablename__ = "partners"
    __table_args__ = (
        UniqueConstraint("program_id", "email"),
        Index("ix_partners_program_status", "program_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(320))
    referral_code: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(16), default=PartnerStatus.ACTIVE.value)
    group_id: Mapped[str | None] = mapped_column(ForeignKey("partner_groups.id"), index=True, default=None)
    country: Mapped[str | None] = mapped_column(String(2), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    company: Mapped[str | None] = mapped_column(String(200), default=None)
    legal_name: Mapped[str | None] = mapped_column(String(200), default=None)
    website: Mapped[str | None] = mapped_column(String(500), default=None)
    # The partner manager on the staff who owns the relationship.
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"), index=True, default=None)
    source: Mapped[str] = mapped_column(String(32), default="staff")  # staff | application | invitation | import
    application: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)  # answers on the form
    status_reason: Mapped[str | None] = mapped_column(Text, default=None)
    status_changed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Set when payout details change: the next payout waits for review until then.
    payout_review_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Where an imported partner came from: the import and the file's line. Kept on the row itself rather
    # than as a timeline line per partner, which cost a third of a 50,000-row import (foreign key checks).
    import_id: Mapped[str | None] = mapped_column(ForeignKey("partner_imports.id"), default=None)
    import_row: Mapped[int | None] = mapped_column(Integer, default=None)
    # The partner who recruited this one: earns a plan rule's two-tier share of this partner's commissions.
    recruited_by_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), index=True, default=None)


class PartnerImport(Base):
    """One CSV import of partners: who, which file (and its SHA-256), how many rows."""

    __tablename__ = "partner_imports"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    filename: Mapped[str] = mapped_column(String(255))
    rows: Mapped[int] = mapped_column(Integer)
    file_sha256: Mapped[str] = mapped_column(String(64))
    created_by: Mapped[str] = mapped_column(String(40))
    created_by_label: Mapped[str] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PartnerGroup(Base):
    """Partners with their own commission overrides; a pilot is a small group with a cap and dates."""

    __tablename__ = "partner_groups"
    __table_args__ = (UniqueConstraint("program_id", "name"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    percent_bp: Mapped[int | None] = mapped_column(Integer, default=None)  # override of the program default
    is_pilot: Mapped[bool] = mapped_column(Boolean, default=False)
    size_cap: Mapped[int | None] = mapped_column(Integer, default=None)
    starts_on: Mapped[date | None] = mapped_column(Date, default=None)
    ends_on: Mapped[date | None] = mapped_column(Date, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PartnerNote(Base):
    """Staff-only knowledge about a partner, kept when people change."""

    __tablename__ = "partner_notes"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    author_id: Mapped[str] = mapped_column(String(40))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PartnerActivity(Base):
    """The partner's timeline: applications, terms, payout-detail changes, messages, deals, payouts."""

    __tablename__ = "partner_activity"
    __table_args__ = (Index("ix_partner_activity_partner_at", "partner_id", "at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    kind: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)
    actor_id: Mapped[str] = mapped_column(String(40))
    ref_type: Mapped[str | None] = mapped_column(String(32), default=None)
    ref_id: Mapped[str | None] = mapped_column(String(40), default=None)


class PartnerUser(Base):
    """A login to the partner portal; one partner may have several."""

    __tablename__ = "partner_users"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    # None until the user sets a password through an invitation link.
    password_hash: Mapped[str | None] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16), default="owner")  # owner | member
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Invitation(Base):
    """A signed, expiring, single-use link to set a portal password (only its hash is stored)."""

    __tablename__ = "invitations"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    email: Mapped[str] = mapped_column(String(320))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # invitation | welcome | reset
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PayoutMethod(Base):
    """How a partner is paid. Bank numbers live only encrypted; `masked` is what people see."""

    __tablename__ = "payout_methods"
    __table_args__ = (Index("ix_payout_methods_partner_active", "partner_id", "active"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    type: Mapped[str] = mapped_column(String(16))  # sepa | ach | paypal | stripe_connect
    details_encrypted: Mapped[str] = mapped_column(Text)
    masked: Mapped[dict[str, Any]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    verified: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    replaced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class TaxProfile(Base):
    """W-9 or W-8BEN (plus an optional EU VAT id), encrypted; `valid` drives "tax form missing"."""

    __tablename__ = "tax_profiles"
    __table_args__ = (Index("ix_tax_profiles_partner_active", "partner_id", "active"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    form: Mapped[str] = mapped_column(String(16))  # w9 | w8ben
    details_encrypted: Mapped[str] = mapped_column(Text)
    masked: Mapped[dict[str, Any]] = mapped_column(JSON)
    valid: Mapped[bool] = mapped_column(Boolean, default=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProspectStage(StrEnum):
    PROSPECT = "prospect"
    CONTACTED = "contacted"
    INVITED = "invited"
    APPLIED = "applied"
    ACTIVE = "active"
    DROPPED = "dropped"


class Prospect(Base):
    """A partner the team is recruiting: the "0 to 10 partners this month" plan, tracked."""

    __tablename__ = "prospects"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    company: Mapped[str] = mapped_column(String(200))
    contact_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(320), default=None)
    website: Mapped[str | None] = mapped_column(String(500), default=None)
    source: Mapped[str] = mapped_column(String(64), default="")
    stage: Mapped[str] = mapped_column(String(16), default=ProspectStage.PROSPECT.value)
    next_step: Mapped[str] = mapped_column(Text, default="")
    due_on: Mapped[date | None] = mapped_column(Date, default=None)
    owner_id: Mapped[str | None] = mapped_column(ForeignKey("staff_users.id"), default=None)
    partner_id: Mapped[str | None] = mapped_column(ForeignKey("partners.id"), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
