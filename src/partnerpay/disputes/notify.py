"""Telling the partner that its dispute was answered: a portal notification and an email, through the outbox
(messaging.notify with the program's "dispute.answered" template)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from partnerpay.disputes.models import Dispute, DisputeStatus
from partnerpay.kit.money import format_money
from partnerpay.messaging.notify import notify_partner_event, portal_link

KIND = "dispute.answered"


def answer_text(dispute: Dispute, adjustment: int | None = None) -> str:
    """What the partner reads: the outcome and the team's reason."""
    if dispute.status == DisputeStatus.RESOLVED_ADJUSTED.value:
        money = f" of {format_money(adjustment, dispute.currency)}" if adjustment is not None else ""
        return (
            f"An adjustment{money} was added to your earnings; it is paid like any line once approved. "
            f"{dispute.resolution_reason}"
        )
    return f"The team did not accept it: {dispute.resolution_reason}"


def dispute_answered(session: Session, dispute: Dispute, *, now: datetime, adjustment: int | None = None) -> None:
    status = "resolved with an adjustment" if dispute.status == DisputeStatus.RESOLVED_ADJUSTED.value else "rejected"
    context = {"dispute": dispute.id, "status": status, "answer": answer_text(dispute, adjustment),
               "link": portal_link(f"/portal/disputes/{dispute.id}")}  # fmt: skip
    notify_partner_event(session, partner_id=dispute.partner_id, kind=KIND, context=context, now=now)
