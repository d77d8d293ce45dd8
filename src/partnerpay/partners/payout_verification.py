"""Verifying a partner's payout method: finance confirms the account belongs to the partner.

A payout run can require a verified method (payouts/settings.py, the verified-method gate). Verification is
maker-checker: whoever entered the details may not verify them, so one person alone can never point a
partner's money at an account and clear it for payment. Replacing the method (set_payout_method) makes a new,
unverified one, so a verification never carries over to details nobody looked at.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import Conflict, Forbidden, ValidationError
from partnerpay.partners.activity import record_activity
from partnerpay.partners.models import PayoutMethod
from partnerpay.partners.payout_details import active_payout_method, lock_partner

NOTE_MAX = 500


def verify_payout_method(
    session: Session, *, actor: Actor, partner_id: str, method_id: str, note: str, now: datetime
) -> PayoutMethod:
    """Mark the partner's active payout method verified; `method_id` must be the one the verifier looked at."""
    if actor.partner_id is not None or not actor.can("payouts"):
        raise Forbidden("verifying a payout method needs the finance or owner role (scope 'payouts')")
    note = note.strip()
    if not note:
        raise ValidationError("say how the account was checked (e.g. 'bank letter on file')", field="note")
    if len(note) > NOTE_MAX:
        raise ValidationError(f"at most {NOTE_MAX} characters", field="note")
    partner = lock_partner(session, actor, partner_id)
    method = active_payout_method(session, partner.id)
    if method is None:
        raise Conflict(f"partner {partner.id} has no payout method to verify", field="method_id")
    if method.id != method_id:
        # The details changed since the verifier opened them: what they checked is no longer what would be paid.
        raise Conflict(
            f"payout method {method_id} is no longer the partner's active one ({method.id} is); "
            "check the new details and verify those",
            field="method_id",
        )
    if method.verified:
        return method
    if method.created_by == actor.id:
        raise Forbidden(
            "you entered these payout details, so someone else with the finance or owner role must verify them",
            field="method_id",
        )
    method.verified = True
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="payout_method.verify",
        object_type="payout_method",
        object_id=method.id,
        program_id=partner.program_id,
        now=now,
        before={"verified": False},
        after={"verified": True, "partner_id": partner.id, "type": method.type, "note": note, **method.masked},
    )
    record_activity(
        session,
        partner_id=partner.id,
        kind="payout_method.verified",
        text=f"Payout method verified by {actor.label or actor.id}: {note}",
        actor=actor,
        now=now,
        ref_type="payout_method",
        ref_id=method.id,
    )
    return method
