"""Commission lines: one amount owed to a partner, explained, pointing at the event that made it."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, UTCDateTime


class LineStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    IN_BATCH = "in_batch"
    PAID = "paid"
    REJECTED = "rejected"


class CommissionLine(Base):
    __tablename__ = "commission_lines"
    __table_args__ = (
        Index("ix_lines_program_status_hold", "program_id", "status", "hold_until"),
        # Partner only, not (partner, status): a payout run moves millions of lines to in_batch, and a status in
        # this index made every moved line a delete and an insert at a random place in it (twice the time at
        # 2M lines on SQLite). A partner's lines are few enough to filter by status after the index look-up.
        Index("ix_lines_partner", "partner_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.id"), default=None)
    event_id: Mapped[str | None] = mapped_column(ForeignKey("events.id"), index=True, default=None)
    kind: Mapped[str] = mapped_column(String(16))  # commission | true_up | bonus | two_tier | clawback | adjustment
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    base_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    rate_bp: Mapped[int | None] = mapped_column(Integer, default=None)
    rounding: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    hold_until: Mapped[datetime] = mapped_column(UTCDateTime())
    explanation: Mapped[str] = mapped_column(Text)
    reverses_line_id: Mapped[str | None] = mapped_column(ForeignKey("commission_lines.id"), index=True, default=None)
    payout_id: Mapped[str | None] = mapped_column(ForeignKey("payouts.id"), index=True, default=None)
    approved_by: Mapped[str | None] = mapped_column(String(40), default=None)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    rejected_reason: Mapped[str | None] = mapped_column(Text, default=None)
    # Manual adjustments only: the staff user who asked (may not approve it) and why.
    created_by: Mapped[str | None] = mapped_column(String(40), default=None)
    reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The plan version and rule (from 1) that made the line; a clawback cites its original's. None for the
    # program's default rate and for manual adjustments.
    plan_version_id: Mapped[str | None] = mapped_column(ForeignKey("plan_versions.id"), index=True, default=None)
    rule_number: Mapped[int | None] = mapped_column(Integer, default=None)
