"""The partner timeline: every service that touches a partner adds a line here, in its transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.kit.ids import new_id
from partnerpay.partners.models import PartnerActivity


def record_activity(
    session: Session,
    *,
    partner_id: str,
    kind: str,
    text: str,
    actor: Actor,
    now: datetime,
    ref_type: str | None = None,
    ref_id: str | None = None,
) -> PartnerActivity:
    item = PartnerActivity(
        id=new_id("act"),
        partner_id=partner_id,
        at=now,
        kind=kind,
        text=text,
        actor_id=actor.id,
        ref_type=ref_type,
        ref_id=ref_id,
    )
    session.add(item)
    return item


def timeline(session: Session, partner_id: str, *, limit: int = 200) -> list[PartnerActivity]:
    """Newest first."""
    return list(
        session.scalars(
            select(PartnerActivity)
            .where(PartnerActivity.partner_id == partner_id)
            .order_by(PartnerActivity.at.desc(), PartnerActivity.id.desc())
            .limit(limit)
        )
    )
