"""Partner status: one transition function, compare-and-set, audited with who and why."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import Forbidden, ValidationError
from partnerpay.kit.state import StateMachine
from partnerpay.partners.activity import record_activity
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.partners.service import get_partner

PARTNERS = StateMachine(
    "partner",
    {
        PartnerStatus.APPLIED: {PartnerStatus.ACTIVE, PartnerStatus.DECLINED},
        PartnerStatus.ACTIVE: {PartnerStatus.SUSPENDED, PartnerStatus.TERMINATED},
        PartnerStatus.SUSPENDED: {PartnerStatus.ACTIVE, PartnerStatus.TERMINATED},
    },
)
# A reason is part of the record for every move that takes something away from a partner.
NEEDS_REASON = {PartnerStatus.DECLINED, PartnerStatus.SUSPENDED, PartnerStatus.TERMINATED}
VERBS = {
    PartnerStatus.ACTIVE: "activated",
    PartnerStatus.DECLINED: "declined",
    PartnerStatus.SUSPENDED: "suspended",
    PartnerStatus.TERMINATED: "terminated",
}


def change_status(
    session: Session, *, actor: Actor, partner_id: str, to: PartnerStatus, now: datetime, reason: str = ""
) -> Partner:
    """Move a partner from its current status to `to`; refuses any transition not in PARTNERS."""
    if not actor.can("write"):
        raise Forbidden("changing a partner's status needs the manager, finance or owner role")
    partner = get_partner(session, actor, partner_id)
    reason = reason.strip()
    if to in NEEDS_REASON and not reason:
        raise ValidationError(f"a reason is required to mark a partner {to.value}", field="reason")
    before = PartnerStatus(partner.status)
    PARTNERS.check(before, to, object_id=partner.id)
    PARTNERS.transition(
        session,
        Partner,
        [partner.id],
        src=before,
        dst=to,
        values={"status_reason": reason or None, "status_changed_at": now},
    )
    audit.record(
        session,
        actor=actor,
        action=f"partner.{to.value}",
        object_type="partner",
        object_id=partner.id,
        program_id=partner.program_id,
        now=now,
        before={"status": before.value},
        after={"status": to.value, "reason": reason},
    )
    record_activity(
        session,
        partner_id=partner.id,
        kind=f"status.{to.value}",
        actor=actor,
        now=now,
        text=f"{VERBS[to].capitalize()} by {actor.label or actor.id}" + (f": {reason}" if reason else ""),
    )
    return partner
