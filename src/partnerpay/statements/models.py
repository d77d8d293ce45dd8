"""Issued statements: which content (by its SHA-256) was handed out for a partner and period, when and by whom."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, SerialKey, UTCDateTime


class IssuedStatement(Base):
    """One row per distinct statement content issued for a partner and period.

    A statement is regenerated from the ledger on every request; the same content is issued once (a repeat
    download adds nothing). A different content for the same period (the ledger moved, e.g. a month still
    running) is a new row, so verification can say which issued statement a file is and when it was issued.
    """

    __tablename__ = "statements"
    __table_args__ = (
        UniqueConstraint("partner_id", "period", "sha256"),
        Index("ix_statements_partner_period", "partner_id", "period"),
    )

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"))
    period: Mapped[str] = mapped_column(String(7))  # YYYY-MM
    # The currencies the statement has a section for, comma separated in code order ("EUR" or "EUR,USD").
    currencies: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))  # of the canonical content
    # SHA-256 of the files as first rendered (PDF, CSV): a file that is byte for byte one of these was issued.
    pdf_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    csv_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    issued_by: Mapped[str] = mapped_column(String(40))  # actor id
    issued_by_type: Mapped[str] = mapped_column(String(16))  # staff | api_key | partner | system
