"""Disputes, the evidence files attached to them, and each program's dispute settings (the SLA)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, SerialKey, UTCDateTime


class DisputeKind(StrEnum):
    WRONG_AMOUNT = "wrong_amount"  # a line exists, the partner expected another amount
    MISSING_COMMISSION = "missing_commission"  # "my referral Acme was not credited"


class DisputeStatus(StrEnum):
    OPEN = "open"
    IN_REVIEW = "in_review"
    RESOLVED_ADJUSTED = "resolved_adjusted"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


# Statuses that still wait for the program team; the SLA (due_at) only counts for these.
WAITING = (DisputeStatus.OPEN.value, DisputeStatus.IN_REVIEW.value)
DEFAULT_SLA_DAYS = 10


class Dispute(Base):
    __tablename__ = "disputes"
    __table_args__ = (
        Index("ix_disputes_program_status_due", "program_id", "status", "due_at"),  # the console queue
        Index("ix_disputes_partner_status", "partner_id", "status"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    kind: Mapped[str] = mapped_column(String(24))
    # wrong_amount: the disputed line. missing_commission: none.
    line_id: Mapped[str | None] = mapped_column(ForeignKey("commission_lines.id"), index=True, default=None)
    # wrong_amount: the commission the partner expected; missing_commission: the amount claimed (optional).
    amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    currency: Mapped[str] = mapped_column(String(3))
    # missing_commission: who the referral was, as the partner knows it (a name, an external id, an email).
    customer_ref: Mapped[str | None] = mapped_column(String(200), default=None)
    event_date: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    description: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(24), default=DisputeStatus.OPEN.value)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    owner_id: Mapped[str | None] = mapped_column(String(40), default=None)  # the staff user reviewing it
    opened_by: Mapped[str] = mapped_column(String(40))
    opened_by_type: Mapped[str] = mapped_column(String(16))  # partner | staff | api_key
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    resolved_by: Mapped[str | None] = mapped_column(String(40), default=None)
    resolution_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # resolved_adjusted: the adjustment line it created (which then goes through approval like any line).
    adjustment_line_id: Mapped[str | None] = mapped_column(ForeignKey("commission_lines.id"), default=None)


class DisputeEvidence(Base):
    """A file attached to a dispute. The file and its SHA-256 live in messaging/attachments; no foreign key
    to that table, because its migration (0020) comes after this one (0019)."""

    __tablename__ = "dispute_evidence"
    __table_args__ = (UniqueConstraint("dispute_id", "attachment_id"),)

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    dispute_id: Mapped[str] = mapped_column(ForeignKey("disputes.id"), index=True)
    attachment_id: Mapped[str] = mapped_column(String(40))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    added_by: Mapped[str] = mapped_column(String(40))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DisputeSettings(Base):
    """Per program: how many days the team has to answer a dispute (default DEFAULT_SLA_DAYS)."""

    __tablename__ = "dispute_settings"

    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    sla_days: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
