"""Double-entry ledger: accounts with maintained balances, append-only transactions and postings."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from partnerpay.db.base import Base, SerialKey, UTCDateTime


class AccountKind(StrEnum):
    """Debit-positive balances: expense and cash grow by debits, payable and clearing by credits."""

    COMMISSION_EXPENSE = "commission_expense"  # owner: the program
    PARTNER_PAYABLE = "partner_payable"  # owner: a partner; what the program owes them
    PAYOUT_CLEARING = "payout_clearing"  # owner: the program; batched, not yet confirmed paid
    CASH = "cash"  # owner: the program; money that left the funding account


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("program_id", "owner_id", "kind", "currency"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"))
    owner_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(32))
    currency: Mapped[str] = mapped_column(String(3))
    # Maintained in the same transaction as every posting; `partnerpay verify` recomputes it.
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerTransaction(Base):
    __tablename__ = "ledger_transactions"
    __table_args__ = (Index("ix_ledger_tx_ref", "ref_type", "ref_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    program_id: Mapped[str] = mapped_column(ForeignKey("programs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    ref_type: Mapped[str] = mapped_column(String(32))
    ref_id: Mapped[str] = mapped_column(String(40))
    reverses_id: Mapped[str | None] = mapped_column(String(40), default=None)
    memo: Mapped[str] = mapped_column(String(500), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerPosting(Base):
    __tablename__ = "ledger_postings"

    id: Mapped[int] = mapped_column(SerialKey, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"), index=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # debit positive, credit negative
    currency: Mapped[str] = mapped_column(String(3))
