"""Payout runs, batches (one per run and currency) and payouts (one per partner and currency)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, SerialKey, UTCDateTime


class BatchStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"
    PAID = "paid"


class PayoutStatus(StrEnum):
    DRAFT = "draft"
    APPROVED = "approved"
    SENDING = "sending"
    SENT = "sent"
    PAID = "paid"
    FAILED = "failed"
    RETURNED = "returned"


class PayoutRun(Base):
    __tablename__ = "payout_runs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PayoutBatch(Base):
    __tablename__ = "payout_batches"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("payout_runs.id"), index=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    total: Mapped[int] = mapped_column(BigInteger)
    payout_count: Mapped[int] = mapped_column(Integer)
    approved_by: Mapped[str | None] = mapped_column(String(40), default=None)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Approval policies (issue 7 part 1, approvals/batches.py): above the program's batch threshold a second,
    # different finance user approves; the batch stays draft (approved_by set) until then.
    second_approved_by: Mapped[str | None] = mapped_column(String(40), default=None)
    second_approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # --- issue 7 parts 2, 3, 7 (B, schedules and the run): the schedule slot that made the batch (None: run by
    # hand), and, when partners are paid in another currency than their lines, the lines' currency, their
    # total and the one recorded rate the whole batch was converted at ---
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    source_currency: Mapped[str | None] = mapped_column(String(3), default=None)
    source_total: Mapped[int | None] = mapped_column(BigInteger, default=None)
    fx_rate_id: Mapped[str | None] = mapped_column(String(40), default=None)
    fx_rate: Mapped[str | None] = mapped_column(String(32), default=None)  # "1.0842", as recorded (base→quote)
    # --- issue 7 parts 4-5 (C, sending): who pressed "Pay all", and when ---
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    sent_by: Mapped[str | None] = mapped_column(String(40), default=None)


class Payout(Base):
    __tablename__ = "payouts"
    __table_args__ = (UniqueConstraint("batch_id", "partner_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("payout_batches.id"))
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    line_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    provider_ref: Mapped[str | None] = mapped_column(String(200), default=None)
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # --- issue 7 parts 4-5 (C, sending): the rail chosen when the batch was sent (sepa, nacha, paypal,
    # paypal_csv, stripe_connect), the provider idempotency key fixed at that moment (a restarted send
    # reuses it), provider calls made, and the last transient error ---
    rail: Mapped[str | None] = mapped_column(String(20), default=None)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), default=None)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    # --- issue 7 parts 3, 7 (B, the run): what the lines summed to in their own currency (the ledger moves
    # this amount, payable → clearing) and the rate amount/currency were converted at (None: same currency) ---
    source_amount: Mapped[int | None] = mapped_column(BigInteger, default=None)
    source_currency: Mapped[str | None] = mapped_column(String(3), default=None)
    fx_rate_id: Mapped[str | None] = mapped_column(String(40), default=None)
    fx_rate: Mapped[str | None] = mapped_column(String(32), default=None)
    # Reconciliation (issue 7 part 6, payouts/reconcile.py): when the rail or bank said the payout failed or came
    # back, and why (shown to the partner and staff).
    failed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    returned_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    failure_reason: Mapped[str | None] = mapped_column(Text, default=None)


# --- issue 7 parts 2, 3, 7, 8 (B, schedules and the run): a program's payout settings, partners' payout
# currencies and the reasons a run left a balance unpaid ---


class PayoutSettings(Base):
    """When a program pays (schedule), how little it pays (minimum per currency) and whom it holds back.

    One row per program; a program without one is run by hand with every gate but the status and
    payout-details ones off (payouts/schedules.py: DEFAULTS).
    """

    __tablename__ = "payout_settings"

    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), primary_key=True)
    schedule: Mapped[str] = mapped_column(String(16))  # manual | monthly | twice_monthly | weekly | net
    day_of_month: Mapped[int | None] = mapped_column(Integer, default=None)  # monthly, twice_monthly (1st day)
    second_day: Mapped[int | None] = mapped_column(Integer, default=None)  # twice_monthly
    weekday: Mapped[int | None] = mapped_column(Integer, default=None)  # weekly: 0 = Monday
    net_days: Mapped[int | None] = mapped_column(Integer, default=None)  # net: days after approval
    run_hour: Mapped[int] = mapped_column(Integer, default=9)  # local hour the run is made
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    minimums: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)  # currency → minor units
    pay_in_partner_currency: Mapped[bool] = mapped_column(Boolean, default=False)
    require_verified_method: Mapped[bool] = mapped_column(Boolean, default=True)
    require_tax_form: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_by: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PartnerPayoutCurrency(Base):
    """The currency a partner is paid in when the program pays partners in their own currency."""

    __tablename__ = "partner_payout_currencies"

    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3))
    updated_by: Mapped[str] = mapped_column(String(40))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PayoutSkip(Base):
    """Why a run left a partner's balance in one currency unpaid (the partner and staff see it)."""

    __tablename__ = "payout_skips"
    __table_args__ = (Index("ix_payout_skips_partner", "partner_id", "created_at"),)

    run_id: Mapped[str] = mapped_column(ForeignKey("payout_runs.id"), primary_key=True)
    partner_id: Mapped[str] = mapped_column(ForeignKey("partners.id"), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    reason: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PayoutLineRelease(Base):
    """A line a failed or returned payout carried, released back to approved (issue 7 part 6).

    The line's payout_id is cleared so a later run pays it again; this row keeps the history (which payout
    carried it, for how much, and why it came back), and the tie-out of a failed payout reads its lines here.
    """

    __tablename__ = "payout_line_releases"
    __table_args__ = (UniqueConstraint("payout_id", "line_id"),)

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    payout_id: Mapped[str] = mapped_column(ForeignKey("payouts.id"), index=True)
    line_id: Mapped[str] = mapped_column(ForeignKey("commission_lines.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    outcome: Mapped[str] = mapped_column(String(16))  # failed | returned
    reason: Mapped[str] = mapped_column(Text)
    released_at: Mapped[datetime] = mapped_column(UTCDateTime())


# --- issue 7 parts 4-5 (C, sending): funding accounts and stored payout files ---


class FundingAccount(Base):
    """The account a program pays from, per rail (sepa, ach): sealed like payout methods, shown masked."""

    __tablename__ = "funding_accounts"
    __table_args__ = (UniqueConstraint("program_id", "kind"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    kind: Mapped[str] = mapped_column(String(16))  # sepa | ach
    details_encrypted: Mapped[str] = mapped_column(Text)
    masked: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PayoutFile(Base):
    """A payout file as first produced (export or "Pay all"): kept byte for byte with its SHA-256, so a
    re-export is identical and `partnerpay verify` ties its control sum to the batch's payouts."""

    __tablename__ = "payout_files"
    __table_args__ = (UniqueConstraint("batch_id", "format"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("payout_batches.id"))
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    format: Mapped[str] = mapped_column(String(16))  # csv | wise | paypal_csv | sepa | nacha
    filename: Mapped[str] = mapped_column(String(200))
    media_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(64))
    control_sum: Mapped[int] = mapped_column(BigInteger)  # minor units
    item_count: Mapped[int] = mapped_column(Integer)
    payout_ids: Mapped[list[str]] = mapped_column(JSON)
    references: Mapped[list[list[str]]] = mapped_column(JSON)  # [payout id, EndToEndId or trace number]
    created_by: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
