"""Payout methods and tax profiles: validated, encrypted at rest, read back only masked.

A change of payout method is the classic fraud path (take over a login, redirect the money), so
a partner user must re-enter their password, every address of the partner is told by email, and
the partner's next payout waits for review for the program's payout_change_hold_days.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.auth.passwords import DUMMY_HASH, verify_password
from partnerpay.db.chunks import in_chunks
from partnerpay.db.engine import is_postgres
from partnerpay.jobs.outbox import enqueue
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import Forbidden, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.messaging.email import enqueue_email
from partnerpay.partners.activity import record_activity
from partnerpay.partners.models import Partner, PartnerUser, PayoutMethod, TaxProfile
from partnerpay.partners.service import get_partner
from partnerpay.partners.validation import (
    TAX_FORM_LABELS,
    TaxForm,
    check_payout_method,
    check_tax_profile,
    describe_masked,
)
from partnerpay.programs.models import Program

NOTIFY_PARTNER = "notify.partner"
REAUTH_FAILED = "That is not your password, so nothing was changed. Enter the password you log in with."
TaxState = Literal["ok", "missing"]


def _when(value: datetime) -> str:
    return value.strftime("%d %b %Y %H:%M UTC")


def lock_partner(session: Session, actor: Actor, partner_id: str) -> Partner:
    """The partner (404 for others), locked for the transaction (FOR UPDATE on PostgreSQL; SQLite's BEGIN
    IMMEDIATE already holds writers off) so two concurrent changes of its details cannot both stay active."""
    partner = get_partner(session, actor, partner_id)
    if is_postgres(session):
        session.refresh(partner, with_for_update=True)
    return partner


def _authorise(session: Session, actor: Actor, partner: Partner, password: str | None) -> None:
    """Staff and API keys need 'write'; a partner user proves it is still them with their password."""
    if actor.type is not ActorType.PARTNER:
        if not actor.can("write"):
            raise Forbidden(f"changing payout or tax details needs the 'write' scope, which {actor.id} lacks")
        return
    user = session.get(PartnerUser, actor.id)
    if user is None or user.partner_id != partner.id or user.password_hash is None:
        verify_password(DUMMY_HASH, password or "")  # same timing whatever failed
        raise ValidationError(REAUTH_FAILED, field="password")
    if not password or not verify_password(user.password_hash, password):
        raise ValidationError(REAUTH_FAILED, field="password")


def _recipients(session: Session, partner: Partner) -> list[str]:
    """The partner's address and every portal login's: a hijacked login cannot silence the warning."""
    users = session.scalars(select(PartnerUser.email).where(PartnerUser.partner_id == partner.id))
    return sorted({partner.email.lower(), *(email.lower() for email in users)})


def set_payout_method(
    session: Session,
    *,
    actor: Actor,
    box: SecretBox,
    partner_id: str,
    data: Mapping[str, Any],
    now: datetime,
    password: str | None = None,
) -> PayoutMethod:
    """Replace the partner's payout method; the old one is kept inactive and the next payout is held."""
    partner = lock_partner(session, actor, partner_id)
    _authorise(session, actor, partner, password)
    checked = check_payout_method(data)
    program = session.get(Program, partner.program_id)
    assert program is not None
    old = active_payout_method(session, partner.id)
    if old is not None:
        old.active = False
        old.replaced_at = now
    method = PayoutMethod(
        id=new_id("pm"),
        partner_id=partner.id,
        type=checked.kind,
        details_encrypted=box.encrypt(checked.details),
        masked=checked.masked,
        active=True,
        verified=False,
        created_by=actor.id,
        created_at=now,
    )
    session.add(method)
    review_until = now + timedelta(days=program.payout_change_hold_days)
    partner.payout_review_until = review_until
    session.flush()
    shown = describe_masked(checked.kind, checked.masked)
    who = actor.label or actor.id
    audit.record(
        session,
        actor=actor,
        action="payout_method.set",
        object_type="payout_method",
        object_id=method.id,
        program_id=partner.program_id,
        now=now,
        # Masked on both sides: the audit log is readable by staff and must never hold the numbers.
        before={"id": old.id, "type": old.type, **old.masked} if old is not None else None,
        after={
            "partner_id": partner.id,
            "type": method.type,
            **checked.masked,
            "payout_review_until": review_until.isoformat(),
        },
    )
    record_activity(
        session,
        partner_id=partner.id,
        kind="payout_method.changed",
        text=f"Payout method set to {shown} by {who}; the next payout is held for review until {_when(review_until)}.",
        actor=actor,
        now=now,
        ref_type="payout_method",
        ref_id=method.id,
    )
    text = (
        f"The payout details of {partner.name} in {program.name} were changed on {_when(now)} by {who}.\n"
        f"New payout method: {shown}.\n"
        f"Your next payout is held for review until {_when(review_until)}.\n\n"
        "If you did not make this change, reply to this email or contact the program team at once."
    )
    subject = f"Your payout details changed ({program.name})"
    for to in _recipients(session, partner):
        enqueue_email(session, to=to, subject=subject, text=text, now=now)
    enqueue(
        session,
        NOTIFY_PARTNER,
        [
            {
                "partner_id": partner.id,
                "kind": "payout_details_changed",
                "text": f"Your payout details changed to {shown}; the next payout is held for review until "
                f"{_when(review_until)}.",
            }
        ],
        now=now,
    )
    return method


def set_tax_profile(
    session: Session,
    *,
    actor: Actor,
    box: SecretBox,
    partner_id: str,
    data: Mapping[str, Any],
    now: datetime,
    password: str | None = None,
) -> TaxProfile:
    """Replace the partner's tax profile (W-9 or W-8BEN, optional EU VAT id); the old one is kept inactive."""
    partner = lock_partner(session, actor, partner_id)
    _authorise(session, actor, partner, password)
    checked = check_tax_profile(data)
    old = active_tax_profile(session, partner.id)
    if old is not None:
        old.active = False
    profile = TaxProfile(
        id=new_id("tax"),
        partner_id=partner.id,
        form=checked.kind,
        details_encrypted=box.encrypt(checked.details),
        masked=checked.masked,
        valid=True,
        active=True,
        created_by=actor.id,
        created_at=now,
    )
    session.add(profile)
    session.flush()
    label = TAX_FORM_LABELS[TaxForm(checked.kind)]
    audit.record(
        session,
        actor=actor,
        action="tax_profile.set",
        object_type="tax_profile",
        object_id=profile.id,
        program_id=partner.program_id,
        now=now,
        before={"id": old.id, "form": old.form, "valid": old.valid, **old.masked} if old is not None else None,
        after={"partner_id": partner.id, "form": profile.form, "valid": True, **checked.masked},
    )
    record_activity(
        session,
        partner_id=partner.id,
        kind="tax_profile.changed",
        text=f"Tax form {label} on file, entered by {actor.label or actor.id}.",
        actor=actor,
        now=now,
        ref_type="tax_profile",
        ref_id=profile.id,
    )
    enqueue(
        session,
        NOTIFY_PARTNER,
        [{"partner_id": partner.id, "kind": "tax_profile_changed", "text": f"Your tax form {label} is on file."}],
        now=now,
    )
    return profile


# --- reads: masked only, except reveal_payout_method for the payout exporters ---------------------


def active_payout_method(session: Session, partner_id: str) -> PayoutMethod | None:
    return session.scalar(
        select(PayoutMethod)
        .where(PayoutMethod.partner_id == partner_id, PayoutMethod.active.is_(True))
        .order_by(PayoutMethod.created_at.desc(), PayoutMethod.id.desc())
        .limit(1)
    )


def payout_method_history(session: Session, partner_id: str, *, limit: int = 20) -> list[PayoutMethod]:
    """Every method the partner had, newest first (replaced ones keep replaced_at)."""
    return list(
        session.scalars(
            select(PayoutMethod)
            .where(PayoutMethod.partner_id == partner_id)
            .order_by(PayoutMethod.created_at.desc(), PayoutMethod.id.desc())
            .limit(limit)
        )
    )


def active_tax_profile(session: Session, partner_id: str) -> TaxProfile | None:
    return session.scalar(
        select(TaxProfile)
        .where(TaxProfile.partner_id == partner_id, TaxProfile.active.is_(True))
        .order_by(TaxProfile.created_at.desc(), TaxProfile.id.desc())
        .limit(1)
    )


def masked_payout_method(method: PayoutMethod, partner: Partner) -> dict[str, Any]:
    """The API and page shape: the input's fields, masked, plus state (never the ciphertext)."""
    return {
        "id": method.id,
        "partner_id": method.partner_id,
        "type": method.type,
        **method.masked,
        "verified": method.verified,
        "created_at": method.created_at,
        "payout_review_until": partner.payout_review_until,
    }


def masked_tax_profile(profile: TaxProfile) -> dict[str, Any]:
    return {
        "id": profile.id,
        "partner_id": profile.partner_id,
        "form": profile.form,
        **profile.masked,
        "valid": profile.valid,
        "created_at": profile.created_at,
    }


def tax_state(session: Session, partner_id: str) -> TaxState:
    """ "missing" unless the partner has an active, valid tax profile (the payout run holds such partners)."""
    return tax_states(session, [partner_id])[partner_id]


def tax_states(session: Session, partner_ids: Iterable[str]) -> dict[str, TaxState]:
    """tax_state for many partners in one query (lists and payout runs)."""
    ids = list(dict.fromkeys(partner_ids))
    ok: set[str] = set()
    for chunk in in_chunks(ids, 1000):
        ok.update(
            session.scalars(
                select(TaxProfile.partner_id).where(
                    TaxProfile.partner_id.in_(chunk),
                    TaxProfile.active.is_(True),
                    TaxProfile.valid.is_(True),
                )
            )
        )
    return {i: "ok" if i in ok else "missing" for i in ids}


def reveal_payout_method(session: Session, *, box: SecretBox, partner_id: str) -> tuple[str, dict[str, Any]] | None:
    """(type, clear details) of the active method, for building a payment file; never for display."""
    method = active_payout_method(session, partner_id)
    if method is None:
        return None
    return method.type, box.decrypt(method.details_encrypted)
