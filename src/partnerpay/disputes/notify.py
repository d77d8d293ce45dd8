"""Telling the partner that its dispute was answered: an in-app notification and an email, through the outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.disputes.models import Dispute, DisputeStatus
from partnerpay.jobs.handlers import NOTIFY_PARTNER
from partnerpay.jobs.outbox import enqueue
from partnerpay.kit.money import format_money
from partnerpay.messaging.email import BASE_URL, enqueue_email
from partnerpay.partners.models import Partner, PartnerUser
from partnerpay.programs.models import Program

KIND = "dispute_answered"


def answer_text(dispute: Dispute, adjustment: int | None = None) -> str:
    """One sentence a partner understands, the same in the portal and the email."""
    if dispute.status == DisputeStatus.RESOLVED_ADJUSTED.value:
        money = f" of {format_money(adjustment, dispute.currency)}" if adjustment is not None else ""
        return (
            f"Your dispute {dispute.id} was resolved: an adjustment{money} was added to your earnings "
            f"(paid like any line once approved). {dispute.resolution_reason}"
        )
    return f"Your dispute {dispute.id} was not accepted: {dispute.resolution_reason}"


def dispute_answered(session: Session, dispute: Dispute, *, now: datetime, adjustment: int | None = None) -> None:
    """A notification in the portal and one email per portal login (the partner's own address when none)."""
    partner = session.get(Partner, dispute.partner_id)
    program = session.get(Program, dispute.program_id)
    assert partner is not None and program is not None
    text = answer_text(dispute, adjustment)
    enqueue(session, NOTIFY_PARTNER, [{"partner_id": partner.id, "kind": KIND, "text": text}], now=now)
    emails = list(session.scalars(select(PartnerUser.email).where(PartnerUser.partner_id == partner.id)))
    link = f"{BASE_URL}/portal/disputes/{dispute.id}"
    body = f"Hello {partner.name},\n\n{text}\n\nSee the dispute in the partner portal: {link}\n"
    for to in emails or [partner.email]:
        enqueue_email(session, to=to, subject=f"{program.name}: your dispute was answered", text=body, now=now)
