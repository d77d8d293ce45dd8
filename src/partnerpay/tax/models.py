"""A program's tax settings and the self-billing invoices it issued (issue 7, part 8)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, UTCDateTime

NEC_THRESHOLD_USD = 60_000  # 600.00 USD: the IRS filing threshold for 1099-NEC (tax years through 2025)


class ProgramTaxSettings(Base):
    """One row per program; a program without one uses the defaults (600 USD, no self-billing)."""

    __tablename__ = "program_tax_settings"

    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    nec_threshold: Mapped[int] = mapped_column(BigInteger, default=NEC_THRESHOLD_USD)  # USD minor units
    self_billing: Mapped[bool] = mapped_column(Boolean, default=False)
    invoice_prefix: Mapped[str] = mapped_column(String(20), default="SB")
    next_invoice_number: Mapped[int] = mapped_column(Integer, default=1)
    # The program's company as the invoices' customer (the partner is the supplier of a self-billing invoice).
    issuer_name: Mapped[str | None] = mapped_column(String(200), default=None)
    issuer_address: Mapped[str | None] = mapped_column(Text, default=None)
    issuer_country: Mapped[str | None] = mapped_column(String(2), default=None)
    issuer_vat_id: Mapped[str | None] = mapped_column(String(32), default=None)
    updated_by: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SelfBillingInvoice(Base):
    """An invoice the program issued on the partner's behalf for one paid payout; its content is frozen at issue."""

    __tablename__ = "self_billing_invoices"
    __table_args__ = (UniqueConstraint("program_id", "sequence"), UniqueConstraint("program_id", "number"))

    payout_id: Mapped[str] = mapped_column(ForeignKey("payouts.id"), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(40))
    # Supplier (partner) and customer (program) as they were at issue, lines summary, amounts, notes.
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SelfBillingCreditNote(Base):
    """The credit note cancelling a payout's self-billing invoice once the payment came back (returned): an
    issued invoice is never changed or deleted. Numbered in the invoices' own sequence (a credit note is a
    corrective invoice); its content mirrors the invoice's with the amounts negated, frozen at issue."""

    __tablename__ = "self_billing_credit_notes"
    __table_args__ = (UniqueConstraint("program_id", "sequence"), UniqueConstraint("program_id", "number"))

    payout_id: Mapped[str] = mapped_column(ForeignKey("self_billing_invoices.payout_id"), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    sequence: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(40))
    invoice_number: Mapped[str] = mapped_column(String(40))  # the invoice it credits
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
