"""Building blocks for payout run tests: approved lines of any sign and currency, posted to the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.commissions.service import post_lines
from partnerpay.kit.ids import new_id
from partnerpay.partners.models import PayoutMethod, TaxProfile
from partnerpay.payouts.models import Payout
from partnerpay.payouts.settings import write_settings


def approved_line(
    session: Session,
    program_id: str,
    partner_id: str,
    amount: int,
    now: datetime,
    *,
    currency: str = "EUR",
    hold_until: datetime | None = None,
) -> CommissionLine:
    """An approved adjustment-like line, posted expense → payable as every line is."""
    line = CommissionLine(
        id=new_id("com"),
        program_id=program_id,
        partner_id=partner_id,
        kind="adjustment",
        amount=amount,
        currency=currency,
        rounding="half_even",
        status=LineStatus.APPROVED.value,
        hold_until=hold_until or now,
        explanation="test line",
        approved_by="system",
        approved_at=now,
        created_at=now,
    )
    session.add(line)
    session.flush()
    post_lines(session, program_id, [line], now)
    return line


def verified_method(session: Session, partner_id: str, now: datetime) -> None:
    session.add(
        PayoutMethod(
            id=new_id("pm"),
            partner_id=partner_id,
            type="paypal",
            details_encrypted="x",
            masked={"email": "p***@example.com"},
            active=True,
            verified=True,
            created_by="system",
            created_at=now,
        )
    )
    session.flush()


def tax_form(session: Session, partner_id: str, form: str, now: datetime, *, valid: bool = True) -> None:
    session.add(
        TaxProfile(
            id=new_id("tax"),
            partner_id=partner_id,
            form=form,
            details_encrypted="x",
            masked={},
            valid=valid,
            active=True,
            created_by="system",
            created_at=now,
        )
    )
    session.flush()


def settings(session: Session, program_id: str, now: datetime, **values: Any) -> None:
    body: dict[str, Any] = {"schedule": "manual", "require_verified_method": False, **values}
    write_settings(session, actor=SYSTEM, program_id=program_id, data=body, now=now)


def lines_in_two_payouts(session: Session) -> int:
    """Lines whose payout id appears on more than one payout row can't exist; count lines in no/unknown payout."""
    return int(
        session.scalar(
            select(func.count())
            .select_from(CommissionLine)
            .outerjoin(Payout, Payout.id == CommissionLine.payout_id)
            .where(CommissionLine.payout_id.is_not(None), Payout.id.is_(None))
        )
        or 0
    )
