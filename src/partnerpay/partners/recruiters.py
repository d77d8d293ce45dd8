"""Who recruited a partner (two-tier): the recruiter earns a plan rule's two_tier_percent_bp of the recruit's
commission. Set when the partner is created or later by PATCH /partners/{id}; audited and on the timeline."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.partners.activity import record_activity
from partnerpay.partners.admin import need_write
from partnerpay.partners.models import Partner
from partnerpay.partners.service import RECRUITER, check_recruiter, get_partner


def set_recruiter(
    session: Session, *, actor: Actor, partner_id: str, recruited_by_id: str | None, now: datetime
) -> Partner:
    """Name the partner's recruiter (None: nobody). Lines already made keep their recruiter; the next
    commission's two-tier share goes to the new one."""
    need_write(actor, "setting a partner's recruiter")
    partner = get_partner(session, actor, partner_id)
    if recruited_by_id == partner.recruited_by_id:
        return partner
    recruiter = (
        check_recruiter(session, program_id=partner.program_id, partner_id=partner.id, recruiter_id=recruited_by_id)
        if recruited_by_id is not None
        else None
    )
    before = partner.recruited_by_id
    partner.recruited_by_id = recruited_by_id
    audit.record(
        session,
        actor=actor,
        action="partner.set_recruiter",
        object_type="partner",
        object_id=partner.id,
        program_id=partner.program_id,
        now=now,
        before={RECRUITER: before},
        after={RECRUITER: recruited_by_id},
    )
    record_activity(
        session,
        partner_id=partner.id,
        kind="recruiter.set",
        actor=actor,
        now=now,
        text=(f"Recruiter set to {recruiter.name}" if recruiter else "Recruiter removed")
        + f" by {actor.label or actor.id}",
        ref_type="partner" if recruiter else None,
        ref_id=recruited_by_id,
    )
    session.flush()
    return partner


def recruits_of(session: Session, partner_id: str, limit: int = 200) -> list[Partner]:
    """The partners this one recruited, by name."""
    stmt = select(Partner).where(Partner.recruited_by_id == partner_id).order_by(Partner.name, Partner.id)
    return list(session.scalars(stmt.limit(limit)))
