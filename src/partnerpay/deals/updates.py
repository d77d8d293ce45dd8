""" "Ask for an update": staff ask, the partner is emailed and answers in the portal; unanswered asks are reminded.

Reminders are outbox jobs (run_after = asked + update_reminder_days), each re-checking the request when it
runs; `remind_unanswered` catches up on any that are due (after downtime) and is safe to run beside them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import SYSTEM, Actor
from partnerpay.auth.models import StaffUser
from partnerpay.deals.access import get_deal, get_lead, get_update_request, require_staff_write
from partnerpay.deals.models import Deal, Lead, UpdateRequest
from partnerpay.deals.rules import MAX_REMINDERS
from partnerpay.deals.timeline import add_line
from partnerpay.jobs.outbox import enqueue
from partnerpay.jobs.registry import JobContext, PermanentJobError
from partnerpay.kit.errors import Forbidden, InvalidTransition, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.messaging.email import BASE_URL, enqueue_email
from partnerpay.messaging.notify import notify_partner_event
from partnerpay.partners.models import Partner, PartnerUser
from partnerpay.programs.models import Program

REMIND_JOB = "deals.update_reminder"
MAX_TEXT = 5000


def _words(value: str, field: str) -> str:
    text = (value or "").strip()
    if not text:
        raise ValidationError(f"{field} is required", field=field)
    if len(text) > MAX_TEXT:
        raise ValidationError(f"{field} must have at most {MAX_TEXT} characters", field=field)
    return text


def _subject(session: Session, item: UpdateRequest) -> tuple[Lead | None, Deal | None]:
    lead = session.get(Lead, item.lead_id) if item.lead_id else None
    deal = session.get(Deal, item.deal_id) if item.deal_id else None
    return lead, deal


def _email_partner(session: Session, item: UpdateRequest, company: str, *, reminder: int, now: datetime) -> int:
    """One email per portal login of the partner (the partner's own address when it has none)."""
    partner = session.get(Partner, item.partner_id)
    program = session.get(Program, item.program_id)
    assert partner is not None and program is not None
    emails = list(session.scalars(select(PartnerUser.email).where(PartnerUser.partner_id == partner.id)))
    # The program's template for "update.requested" (messaging/templates.py); a partner may turn these off.
    context = {
        "item": company,
        "question": item.message,
        "reminder": "reminder, " if reminder else "",
        "link": f"{BASE_URL}/portal/leads#upd-{item.id}",
    }
    to = emails or [partner.email]
    notify_partner_event(session, partner_id=partner.id, kind="update.requested", context=context, now=now,
                         portal=False, to=to)  # fmt: skip
    return len(to)


def ask_for_update(
    session: Session,
    *,
    actor: Actor,
    message: str,
    lead_id: str | None = None,
    deal_id: str | None = None,
    now: datetime,
) -> UpdateRequest:
    """Ask the partner about a lead or deal: emailed now, reminded every update_reminder_days until answered."""
    require_staff_write(actor, "asking for an update")
    text = _words(message, "message")
    if (lead_id is None) == (deal_id is None):
        raise ValidationError("ask about either a lead or a deal", field="lead_id")
    deal = get_deal(session, actor, deal_id) if deal_id else None
    lead = get_lead(session, actor, lead_id) if lead_id else None
    if deal is None and lead is not None:
        deal = session.scalar(select(Deal).where(Deal.lead_id == lead.id))  # an accepted lead: ask on its deal
    if lead is None and deal is not None and deal.lead_id:
        lead = session.get(Lead, deal.lead_id)
    subject = deal or lead
    assert subject is not None
    program = session.get(Program, subject.program_id)
    assert program is not None
    due = now + timedelta(days=program.update_reminder_days)
    item = UpdateRequest(
        id=new_id("upd"), program_id=subject.program_id, partner_id=subject.partner_id,
        lead_id=lead.id if lead else None, deal_id=deal.id if deal else None, message=text,
        asked_by=actor.id, asked_at=now, next_reminder_at=due, reminders_sent=0,
    )  # fmt: skip
    session.add(item)
    session.flush()
    _email_partner(session, item, subject.company, reminder=0, now=now)
    enqueue(session, REMIND_JOB, [{"update_request_id": item.id}], now=now, run_after=due)
    audit.record(session, actor=actor, action="update_request.ask", object_type="update_request", object_id=item.id,
                 program_id=item.program_id, now=now,
                 after={"lead_id": item.lead_id, "deal_id": item.deal_id, "message": text})  # fmt: skip
    add_line(session, lead=lead, deal=deal, kind="update.asked", text=f"Update asked: {text}", actor=actor, now=now)
    return item


def answer_update_request(
    session: Session, *, actor: Actor, request_id: str, answer: str, now: datetime
) -> UpdateRequest:
    """The partner's answer: on the lead's/deal's timeline, the request closed, the last-update date moved."""
    item = get_update_request(session, actor, request_id)
    if actor.partner_id is None:
        raise Forbidden("the partner answers an update request, in the portal or with its own login")
    text = _words(answer, "answer")
    done = session.execute(
        update(UpdateRequest)
        .where(UpdateRequest.id == item.id, UpdateRequest.answered_at.is_(None))
        .values(answered_at=now, answer=text, answered_by=actor.id, next_reminder_at=None)
        .execution_options(synchronize_session="fetch")
    )
    if done.rowcount != 1:  # type: ignore[attr-defined]
        raise InvalidTransition(f"update request {item.id} was answered already", field="answer")
    session.refresh(item)
    lead, deal = _subject(session, item)
    for subject in (lead, deal):
        if subject is not None:
            subject.last_update_at = now
    session.flush()
    audit.record(session, actor=actor, action="update_request.answer", object_type="update_request",
                 object_id=item.id, program_id=item.program_id, now=now, after={"answer": text})  # fmt: skip
    add_line(session, lead=lead, deal=deal, kind="update.answered", text=f"Partner's update: {text}", actor=actor,
             now=now)  # fmt: skip
    _email_asker(session, item, deal or lead, text, now=now)
    return item


def _email_asker(
    session: Session, item: UpdateRequest, subject: Lead | Deal | None, answer: str, *, now: datetime
) -> None:
    """The team member who asked hears back by email (an API key that asked has no inbox: nothing is sent)."""
    asker = session.get(StaffUser, item.asked_by)
    partner = session.get(Partner, item.partner_id)
    if asker is None or subject is None or partner is None:
        return
    path = f"/deals/{subject.id}" if isinstance(subject, Deal) else f"/deals/leads/{subject.id}"
    text = f"{partner.name} answered your update request on {subject.company}:\n\n{answer}\n\n{BASE_URL}{path}\n"
    enqueue_email(session, to=asker.email, subject=f"{partner.name}: update on {subject.company}", text=text, now=now)


def remind(session: Session, item: UpdateRequest, *, now: datetime) -> bool:
    """Email a reminder if the request is still open and due; schedule the next one (at most MAX_REMINDERS)."""
    if item.answered_at is not None or item.next_reminder_at is None or item.reminders_sent >= MAX_REMINDERS:
        return False
    if item.next_reminder_at > now:
        return False  # reminded meanwhile (a sweep, or an earlier job): this one is early
    sent = item.reminders_sent + 1
    program = session.get(Program, item.program_id)
    assert program is not None
    following = now + timedelta(days=program.update_reminder_days) if sent < MAX_REMINDERS else None
    # Compare-and-set on the count: a job and a sweep running together remind once.
    claimed = session.execute(
        update(UpdateRequest)
        .where(UpdateRequest.id == item.id, UpdateRequest.reminders_sent == item.reminders_sent,
               UpdateRequest.answered_at.is_(None))
        .values(reminders_sent=sent, next_reminder_at=following)
        .execution_options(synchronize_session="fetch")
    )  # fmt: skip
    if claimed.rowcount != 1:  # type: ignore[attr-defined]
        return False
    lead, deal = _subject(session, item)
    subject = deal or lead
    assert subject is not None
    _email_partner(session, item, subject.company, reminder=sent, now=now)
    if following is not None:
        enqueue(session, REMIND_JOB, [{"update_request_id": item.id}], now=now, run_after=following)
    audit.record(session, actor=SYSTEM, action="update_request.remind", object_type="update_request",
                 object_id=item.id, program_id=item.program_id, now=now, after={"reminders_sent": sent})  # fmt: skip
    add_line(session, lead=lead, deal=deal, kind="update.reminded", text=f"Reminder {sent} of {MAX_REMINDERS} sent",
             actor=SYSTEM, now=now, partner_timeline=False)  # fmt: skip
    return True


def remind_job(session: Session, payload: dict[str, Any], context: JobContext) -> None:
    """The "deals.update_reminder" job: re-checks the request, since it may have been answered since."""
    request_id = payload.get("update_request_id")
    if not isinstance(request_id, str):
        raise PermanentJobError(f"payload field 'update_request_id' must be a string, got {request_id!r}")
    item = session.get(UpdateRequest, request_id)
    if item is None:
        raise PermanentJobError(f"update request {request_id} does not exist")
    remind(session, item, now=context.now)


def remind_unanswered(session: Session, *, now: datetime) -> int:
    """Send every reminder that is due (catching up after downtime); returns how many were sent."""
    due = session.scalars(
        select(UpdateRequest)
        .where(UpdateRequest.answered_at.is_(None), UpdateRequest.next_reminder_at <= now,
               UpdateRequest.reminders_sent < MAX_REMINDERS)
        .order_by(UpdateRequest.id)
    ).all()  # fmt: skip
    return sum(1 for item in due if remind(session, item, now=now))
