"""Moving deals through the pipeline: stages, won (a deal_won event) and lost. The HubSpot sync calls move_deal."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.deals.access import get_deal, require_staff_write
from partnerpay.deals.models import Deal
from partnerpay.deals.rules import DEAL_MACHINE, DealStatus
from partnerpay.deals.timeline import add_line
from partnerpay.events.schemas import EventIn, EventType
from partnerpay.events.service import record_event
from partnerpay.kit.errors import ConcurrentWrite, InvalidTransition, ValidationError
from partnerpay.kit.money import check_currency, format_money
from partnerpay.programs.models import Program
from partnerpay.programs.tracking_settings import deal_stages

Source = Literal["staff", "api", "hubspot"]


def deal_by_crm_id(session: Session, *, program_id: str, crm_id: str) -> Deal | None:
    """The deal the CRM knows as crm_id (HubSpot deal id) in this program, if any."""
    return session.scalar(select(Deal).where(Deal.program_id == program_id, Deal.crm_id == crm_id))


def link_crm(session: Session, *, actor: Actor, deal_id: str, crm_id: str, now: datetime) -> Deal:
    """Remember the CRM's id of a deal, so later CRM changes find it (deal_by_crm_id)."""
    require_staff_write(actor, "linking a deal to the CRM")
    deal = get_deal(session, actor, deal_id)
    crm_id = crm_id.strip()
    if not crm_id or len(crm_id) > 200:
        raise ValidationError("crm_id must have 1 to 200 characters", field="crm_id")
    taken = deal_by_crm_id(session, program_id=deal.program_id, crm_id=crm_id)
    if taken is not None and taken.id != deal.id:
        raise ValidationError(f"CRM deal {crm_id} is already linked to deal {taken.id}", field="crm_id")
    before = deal.crm_id
    deal.crm_id, deal.updated_at = crm_id, now
    audit.record(session, actor=actor, action="deal.link_crm", object_type="deal", object_id=deal.id,
                 program_id=deal.program_id, now=now, before={"crm_id": before}, after={"crm_id": crm_id})  # fmt: skip
    return deal


def move_deal(
    session: Session,
    *,
    actor: Actor,
    deal_id: str,
    stage: str | None = None,
    status: str | None = None,
    amount: int | None = None,
    currency: str | None = None,
    customer_external_id: str | None = None,
    reason: str | None = None,
    source: Source = "staff",
    now: datetime,
) -> Deal:
    """Move an open deal to another stage, or close it as won (with an amount: a deal_won event) or lost.

    Exactly one of stage and status. Moving to the stage it is already at changes nothing (a CRM resend).
    """
    require_staff_write(actor, "moving a deal")
    deal = get_deal(session, actor, deal_id)
    if (stage is None) == (status is None):
        raise ValidationError("send either a stage or a status (won or lost)", field="stage")
    if deal.status != DealStatus.OPEN:
        raise InvalidTransition(f"deal {deal.id} is {deal.status}; a closed deal does not move", field="status")
    program = session.get(Program, deal.program_id)
    assert program is not None
    if stage is not None:
        return _move_stage(session, actor=actor, deal=deal, program=program, stage=stage, source=source, now=now)
    if status == DealStatus.WON:
        return _win(session, actor=actor, deal=deal, program=program, amount=amount, currency=currency,
                    customer_external_id=customer_external_id, source=source, now=now)  # fmt: skip
    if status == DealStatus.LOST:
        why = (reason or "").strip()
        if not why:
            raise ValidationError("say why the deal was lost", field="reason")
        DEAL_MACHINE.transition(session, Deal, [deal.id], src=DealStatus.OPEN, dst=DealStatus.LOST,
                                values={"lost_reason": why, "updated_at": now})  # fmt: skip
        audit.record(session, actor=actor, action="deal.lost", object_type="deal", object_id=deal.id,
                     program_id=deal.program_id, now=now, before={"status": "open", "stage": deal.stage},
                     after={"status": "lost", "reason": why, "source": source})  # fmt: skip
        add_line(session, deal=deal, kind="deal.lost", text=f"Deal lost: {why}", actor=actor, now=now)
        return deal
    raise ValidationError(f"status must be won or lost, got {status!r}", field="status")


def _move_stage(
    session: Session, *, actor: Actor, deal: Deal, program: Program, stage: str, source: Source, now: datetime
) -> Deal:
    stages = deal_stages(program)
    wanted = stage.strip().lower()
    if wanted not in stages:
        raise ValidationError(f"stage must be one of {', '.join(stages)}, got {stage!r}", field="stage")
    if wanted == deal.stage:
        return deal
    before = deal.stage
    # Compare-and-set on status and stage: two people moving the same card cannot both win.
    moved = session.execute(
        update(Deal)
        .where(Deal.id == deal.id, Deal.status == DealStatus.OPEN.value, Deal.stage == before)
        .values(stage=wanted, updated_at=now)
        .execution_options(synchronize_session="fetch")
    )
    if moved.rowcount != 1:  # type: ignore[attr-defined]
        raise ConcurrentWrite(f"deal {deal.id} was changed meanwhile; reload and try again")
    audit.record(session, actor=actor, action="deal.stage", object_type="deal", object_id=deal.id,
                 program_id=deal.program_id, now=now, before={"stage": before},
                 after={"stage": wanted, "source": source})  # fmt: skip
    add_line(session, deal=deal, kind="deal.stage", text=f"Stage {before} → {wanted}", actor=actor, now=now,
             partner_timeline=False)  # fmt: skip
    return deal


def _win(
    session: Session,
    *,
    actor: Actor,
    deal: Deal,
    program: Program,
    amount: int | None,
    currency: str | None,
    customer_external_id: str | None,
    source: Source,
    now: datetime,
) -> Deal:
    if amount is not None and (isinstance(amount, bool) or not isinstance(amount, int) or amount < 0):
        raise ValidationError("amount must be a whole number of minor units, 0 or more", field="amount")
    money_currency = check_currency(currency or deal.currency or program.currency) if amount is not None else None
    customer = (customer_external_id or "").strip() or deal.domain or f"deal:{deal.id}"
    event_id: str | None = None
    if amount is not None:
        # The deal_won event is what the commission engine consumes; recorded in this same transaction.
        recorded = record_event(
            session,
            actor=actor,
            now=now,
            data=EventIn(
                program_id=deal.program_id,
                type=EventType.DEAL_WON,
                external_id=f"deal:{deal.id}",
                occurred_at=now,
                customer_external_id=customer,
                partner_id=deal.partner_id,
                amount=amount,
                currency=money_currency,
            ),
        )
        event_id = recorded.event.id
    DEAL_MACHINE.transition(
        session, Deal, [deal.id], src=DealStatus.OPEN, dst=DealStatus.WON,
        values={"won_at": now, "updated_at": now, "event_id": event_id, "customer_external_id": customer,
                **({"amount": amount, "currency": money_currency} if amount is not None else {})},
    )  # fmt: skip
    audit.record(session, actor=actor, action="deal.won", object_type="deal", object_id=deal.id,
                 program_id=deal.program_id, now=now, before={"status": "open", "stage": deal.stage},
                 after={"status": "won", "amount": amount, "currency": money_currency, "event_id": event_id,
                        "customer_external_id": customer, "source": source})  # fmt: skip
    worth = f" at {format_money(amount, money_currency)}" if amount is not None and money_currency else ""
    add_line(session, deal=deal, kind="deal.won", text=f"Deal won{worth}", actor=actor, now=now)
    return deal


def deal_for_lead(session: Session, lead_id: str) -> Deal | None:
    return session.scalar(select(Deal).where(Deal.lead_id == lead_id))
