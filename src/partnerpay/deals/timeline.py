"""Writing lead and deal timeline lines, and mirroring the important ones on the partner's timeline."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.deals.models import Deal, DealActivity, Lead
from partnerpay.kit.ids import new_id
from partnerpay.partners.activity import record_activity
from partnerpay.webhooks_out import emit as webhooks_out


def add_line(
    session: Session,
    *,
    lead: Lead | None = None,
    deal: Deal | None = None,
    kind: str,
    text: str,
    actor: Actor,
    now: datetime,
    partner_timeline: bool = True,
) -> DealActivity:
    """One line on the lead's/deal's timeline; with partner_timeline, the same words on the partner's."""
    subject = deal if deal is not None else lead
    assert subject is not None, "a timeline line belongs to a lead or a deal"
    line = DealActivity(
        id=new_id("dact"),
        program_id=subject.program_id,
        partner_id=subject.partner_id,
        lead_id=lead.id if lead is not None else (deal.lead_id if deal is not None else None),
        deal_id=deal.id if deal is not None else None,
        at=now,
        kind=kind,
        text=text,
        actor_id=actor.id,
        actor_label=actor.label or actor.id,
    )
    session.add(line)
    if deal is not None:  # every change to a deal passes here: its deal.updated webhook (issue 8)
        webhooks_out.deal_updated(session, deal, kind, text, now)
    if partner_timeline:
        ref_type, ref_id = ("deal", deal.id) if deal is not None else ("lead", subject.id)
        record_activity(
            session,
            partner_id=subject.partner_id,
            kind=kind,
            text=f"{subject.company}: {text}",
            actor=actor,
            now=now,
            ref_type=ref_type,
            ref_id=ref_id,
        )
    return line


def lines_for(session: Session, *, lead_id: str | None, deal_id: str | None, limit: int = 500) -> list[DealActivity]:
    """The lead's and its deal's lines together, oldest first (the order things happened)."""
    conditions = []
    if lead_id is not None:
        conditions.append(DealActivity.lead_id == lead_id)
    if deal_id is not None:
        conditions.append(DealActivity.deal_id == deal_id)
    if not conditions:
        return []
    stmt = select(DealActivity).where(or_(*conditions)).order_by(DealActivity.at, DealActivity.id).limit(limit)
    return list(session.scalars(stmt))
