"""Telling the partner's owner that a dispute arrived, and the partner that its dispute was answered: emails and a
portal notification, through the outbox (the answer with the program's "dispute.answered" template)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from partnerpay.auth.models import StaffUser
from partnerpay.disputes.models import Dispute, DisputeStatus
from partnerpay.kit.money import format_money
from partnerpay.messaging.email import BASE_URL, enqueue_email
from partnerpay.messaging.notify import notify_partner_event, portal_link
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program

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


def dispute_opened(session: Session, dispute: Dispute, *, now: datetime) -> str | None:
    """Email the partner's owner (else the program's default owner) that a partner opened a dispute; returns the
    address, or None when nobody owns the partner (the console home and queue still list it)."""
    partner = session.get(Partner, dispute.partner_id)
    program = session.get(Program, dispute.program_id)
    assert partner is not None and program is not None
    owner_id = partner.owner_id or program.default_owner_id
    owner = session.get(StaffUser, owner_id) if owner_id else None
    if owner is None:
        return None
    what = f"line {dispute.line_id}" if dispute.line_id else f"a missing commission ({dispute.customer_ref})"
    text = (
        f"{partner.name} disputes {what}:\n\n{dispute.description}\n\n"
        f"Due by {dispute.due_at:%d %b %Y}. The case with the data side by side: {BASE_URL}/disputes/{dispute.id}\n"
    )
    enqueue_email(session, to=owner.email, subject=f"{partner.name} opened dispute {dispute.id}", text=text, now=now)
    return owner.email
