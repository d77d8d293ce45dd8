"""What a partner sees: its own lines with what happens next, its payouts and notifications.

Every function takes the partner id from the logged-in portal user, never from the URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.commissions.queries import Balance, partner_balance
from partnerpay.messaging.models import Notification
from partnerpay.partners.models import Partner
from partnerpay.payouts.models import Payout, PayoutBatch

PAGE_SIZE = 50


@dataclass(frozen=True)
class PayoutRef:
    """The payout (and its batch) a line went into, if any."""

    payout_id: str
    batch_id: str
    batch_status: str
    paid_at: datetime | None


@dataclass(frozen=True)
class LineView:
    line: CommissionLine
    next_step: str
    status_text: str = ""  # the status with its date: "payable from 12 Mar 2026", "paid on 14 Mar 2026"


def _day(value: datetime) -> str:
    return f"{value:%d %b %Y}".lstrip("0")


def status_text(line: CommissionLine, payout: PayoutRef | None, now: datetime) -> str:
    """The line's status with the date that matters to the partner: when it becomes payable (the end of its
    hold), when it was approved, when it was paid."""
    payable = f"payable from {_day(line.hold_until)}" if line.hold_until > now else "payable now"
    if line.status == LineStatus.PENDING.value:
        return f"pending approval; {payable}" if line.hold_until > now else "pending approval"
    if line.status == LineStatus.APPROVED.value:
        approved = f"approved {_day(line.approved_at)}" if line.approved_at else "approved"
        return f"{approved}; {payable}"
    if line.status == LineStatus.IN_BATCH.value:
        return f"in payout {payout.payout_id}" if payout is not None else "in a payout"
    if line.status == LineStatus.PAID.value:
        verb = "netted" if line.amount < 0 else "paid"
        return f"{verb} on {_day(payout.paid_at)}" if payout is not None and payout.paid_at else verb
    return line.status.replace("_", " ")


def next_step(line: CommissionLine, payout: PayoutRef | None, now: datetime) -> str:
    """One sentence: where the line stands and what happens to it next."""
    held = line.hold_until > now
    hold = f"on hold until {_day(line.hold_until)} — refund window"
    clawback = line.amount < 0
    if line.status == LineStatus.PENDING.value:
        return f"waiting for approval; {hold}" if held else "waiting for approval, then in the next payout run"
    if line.status == LineStatus.APPROVED.value:
        if held:
            return f"approved; {hold}, then in the next payout run"
        if clawback:
            what = "adjustment" if line.kind == "adjustment" else "clawback"
            return f"approved {what}, taken off your next payout"
        return "approved, in the next payout run"
    if line.status == LineStatus.IN_BATCH.value and payout is not None:
        return f"in batch {payout.batch_id} ({payout.batch_status}), paid when the bank confirms the transfer"
    if line.status == LineStatus.PAID.value:
        when = f" on {_day(payout.paid_at)}" if payout is not None and payout.paid_at else ""
        return f"netted in payout {payout.payout_id}{when}" if clawback and payout else f"paid{when}"
    if line.status == LineStatus.REJECTED.value:
        return f"rejected: {line.rejected_reason}" if line.rejected_reason else "rejected"
    return line.status.replace("_", " ")


def partner_lines(
    session: Session, partner_id: str, now: datetime, *, before: str | None = None, limit: int = PAGE_SIZE
) -> tuple[list[LineView], str | None]:
    """Newest first; the second value is the cursor for older lines, if there are any."""
    stmt = (
        select(CommissionLine, Payout.id, Payout.batch_id, PayoutBatch.status, Payout.paid_at)
        .outerjoin(Payout, Payout.id == CommissionLine.payout_id)
        .outerjoin(PayoutBatch, PayoutBatch.id == Payout.batch_id)
        .where(CommissionLine.partner_id == partner_id)
        .order_by(CommissionLine.id.desc())
        .limit(limit + 1)
    )
    if before:
        stmt = stmt.where(CommissionLine.id < before)
    rows = session.execute(stmt).all()
    refs = [
        (line, PayoutRef(pid, bid, bstatus, paid) if pid and bid else None)
        for line, pid, bid, bstatus, paid in rows[:limit]
    ]
    views = [LineView(line, next_step(line, ref, now), status_text(line, ref, now)) for line, ref in refs]
    older = views[-1].line.id if len(rows) > limit and views else None
    return views, older


def balances(session: Session, partner: Partner, program_currency: str, now: datetime) -> list[Balance]:
    """One balance per currency the partner has lines in (the program's currency at least)."""
    currencies = set(
        session.scalars(select(CommissionLine.currency).where(CommissionLine.partner_id == partner.id).distinct())
    )
    currencies.add(program_currency)
    return [partner_balance(session, partner, currency, now) for currency in sorted(currencies)]


def payouts(session: Session, partner_id: str, *, limit: int = 20) -> list[Payout]:
    return list(
        session.scalars(select(Payout).where(Payout.partner_id == partner_id).order_by(Payout.id.desc()).limit(limit))
    )


def notifications(session: Session, partner_id: str, *, limit: int = 20) -> list[Notification]:
    return list(
        session.scalars(
            select(Notification)
            .where(Notification.partner_id == partner_id)
            .order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(limit)
        )
    )
