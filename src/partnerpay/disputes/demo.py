"""The demo's disputes: the portal partner disputes its latest line, another partner's missing commission was
phoned in; both wait on the console home (`partnerpay demo`)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor, ActorType
from partnerpay.commissions.models import CommissionLine
from partnerpay.demo.data import PORTAL_PARTNER
from partnerpay.demo.onboarding import Cast, Extra
from partnerpay.disputes.service import open_dispute
from partnerpay.partners.models import Partner, PartnerUser

CLAIMING_PARTNER = 1


def _partner_actor(session: Session, partner_id: str) -> Actor | None:
    user = session.scalars(select(PartnerUser).where(PartnerUser.partner_id == partner_id)).first()
    partner = session.get(Partner, partner_id)
    if user is None or partner is None:
        return None
    return Actor(ActorType.PARTNER, user.id, frozenset({"read"}), partner.program_id, partner.id, user.email)


def _wrong_amount(session: Session, cast: Cast, at: datetime) -> None:
    partner_id = cast.partner_ids.get(PORTAL_PARTNER)
    actor = _partner_actor(session, partner_id) if partner_id else None
    line = session.scalars(
        select(CommissionLine)
        .where(CommissionLine.partner_id == partner_id, CommissionLine.kind == "commission", CommissionLine.amount > 0)
        .order_by(CommissionLine.created_at.desc(), CommissionLine.id.desc())
    ).first()
    if actor is None or line is None:
        return
    open_dispute(session, actor=actor, kind="wrong_amount", line_id=line.id, amount=line.amount + line.amount // 4,
                 description="This customer is on the annual Pro plan, which pays 25 % under our agreement, "
                 "not 20 %. The invoice is attached to my email of last week.", now=at)  # fmt: skip


def _missing(session: Session, cast: Cast, at: datetime) -> None:
    partner_id = cast.partner_ids.get(CLAIMING_PARTNER)
    if partner_id is None:
        return
    open_dispute(session, actor=cast.manager, kind="missing_commission", partner_id=partner_id,
                 customer_ref="Northwind Traders", event_date=at - timedelta(days=9), amount=12_000,
                 description="Phoned in: Northwind Traders signed up after a webinar we ran together; "
                 "the referral link was in the invitation.", now=at)  # fmt: skip


def extras(now: datetime) -> list[Extra]:
    return [
        Extra(now - timedelta(days=3, hours=2), "a partner disputes a line's amount", _wrong_amount),
        Extra(now - timedelta(hours=20), "a missing commission phoned in", _missing),
    ]
