"""Partner administration: suspend, reinstate, terminate, owners and staff notes (all audited, all on the timeline)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.auth.models import StaffUser
from partnerpay.kit.errors import Forbidden, InvalidTransition, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.partners.activity import record_activity
from partnerpay.partners.lifecycle import change_status
from partnerpay.partners.models import Partner, PartnerNote, PartnerStatus
from partnerpay.partners.service import get_partner

MAX_BULK = 5000
MAX_NOTE = 10_000


def need_write(actor: Actor, what: str) -> None:
    if not actor.can("write") or actor.partner_id is not None:
        raise Forbidden(f"{what} needs the manager, finance or owner role")


def visible_partners(
    session: Session, actor: Actor, partner_ids: Sequence[str], field: str = "partner_ids"
) -> list[Partner]:
    """The partners in the order asked, duplicates dropped; 404 naming the first one the actor cannot see."""
    wanted = list(dict.fromkeys(i.strip() for i in partner_ids if i and i.strip()))
    if not wanted:
        raise ValidationError("choose at least one partner", field=field)
    if len(wanted) > MAX_BULK:
        raise ValidationError(f"at most {MAX_BULK} partners at once, got {len(wanted)}", field=field)
    found = {p.id: p for p in session.scalars(select(Partner).where(Partner.id.in_(wanted)))}
    for partner_id in wanted:
        partner = found.get(partner_id)
        if partner is None or not actor.sees_program(partner.program_id) or actor.partner_id is not None:
            raise NotFound(f"partner {partner_id} not found", field=field)
    return [found[i] for i in wanted]


def _moved(session: Session, partner: Partner) -> Partner:
    # The compare-and-set UPDATE does not refresh reason and time on the loaded object: read them back.
    session.expire(partner, ["status", "status_reason", "status_changed_at"])
    return partner


def suspend(session: Session, *, actor: Actor, partner_id: str, reason: str, now: datetime) -> Partner:
    """Stop new earnings and payouts; what is payable stays on the books until reinstated."""
    to = PartnerStatus.SUSPENDED
    return _moved(session, change_status(session, actor=actor, partner_id=partner_id, to=to, now=now, reason=reason))


def reinstate(session: Session, *, actor: Actor, partner_id: str, now: datetime, reason: str = "") -> Partner:
    """Back to active; only a suspended partner can be reinstated (an applicant is approved instead)."""
    partner = get_partner(session, actor, partner_id)
    if partner.status != PartnerStatus.SUSPENDED.value:
        raise InvalidTransition(
            f"partner {partner.id} is {partner.status}; only a suspended partner can be reinstated", field="status"
        )
    to = PartnerStatus.ACTIVE
    return _moved(session, change_status(session, actor=actor, partner_id=partner_id, to=to, now=now, reason=reason))


def terminate(session: Session, *, actor: Actor, partner_id: str, reason: str, now: datetime) -> Partner:
    """The end of the relationship; it cannot be undone."""
    to = PartnerStatus.TERMINATED
    return _moved(session, change_status(session, actor=actor, partner_id=partner_id, to=to, now=now, reason=reason))


def staff_user(session: Session, user_id: str, field: str = "owner_id") -> StaffUser:
    user = session.get(StaffUser, user_id)
    if user is None:
        raise ValidationError(f"there is no staff user {user_id!r}; choose a member of the team", field=field)
    return user


def assign_owner(
    session: Session, *, actor: Actor, partner_ids: Sequence[str], owner_id: str | None, now: datetime
) -> list[Partner]:
    """Make one staff user the owner of these partners (None: nobody); unchanged partners are left alone."""
    need_write(actor, "assigning a partner's owner")
    owner = staff_user(session, owner_id) if owner_id else None
    partners = visible_partners(session, actor, partner_ids)
    changed = [p for p in partners if p.owner_id != owner_id]
    names = _emails(session, {p.owner_id for p in changed if p.owner_id})
    items: list[tuple[str, str, str | None, Any, Any]] = []
    for partner in changed:
        before = partner.owner_id
        partner.owner_id = owner_id
        items.append(("partner", partner.id, partner.program_id, {"owner_id": before}, {"owner_id": owner_id}))
        was = f" (was {names.get(before, before)})" if before else ""
        text = f"Owner set to {owner.email}" if owner else "Owner removed"
        record_activity(
            session,
            partner_id=partner.id,
            kind="owner.assigned",
            actor=actor,
            now=now,
            text=f"{text}{was} by {actor.label or actor.id}",
            ref_type="staff_user" if owner else None,
            ref_id=owner_id,
        )
    if items:
        audit.record_many(session, actor=actor, action="partner.assign_owner", now=now, items=items)
    session.flush()
    return partners


def _emails(session: Session, ids: set[str]) -> dict[str, str]:
    if not ids:
        return {}
    return dict(session.execute(select(StaffUser.id, StaffUser.email).where(StaffUser.id.in_(ids))).all())


def add_note(session: Session, *, actor: Actor, partner_id: str, body: str, now: datetime) -> PartnerNote:
    """A staff-only note on a partner: never shown in the portal, kept when people change."""
    need_write(actor, "adding a note")
    partner = get_partner(session, actor, partner_id)
    body = body.strip()
    if not body:
        raise ValidationError("the note is empty; write what the team should know", field="body")
    if len(body) > MAX_NOTE:
        raise ValidationError(f"a note has at most {MAX_NOTE} characters, this one has {len(body)}", field="body")
    note = PartnerNote(id=new_id("note"), partner_id=partner.id, author_id=actor.id, body=body, created_at=now)
    session.add(note)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="partner_note.create",
        object_type="partner_note",
        object_id=note.id,
        program_id=partner.program_id,
        now=now,
        after={"partner_id": partner.id, "body": body},
    )
    preview = body if len(body) <= 80 else body[:79] + "…"
    record_activity(
        session,
        partner_id=partner.id,
        kind="note.added",
        actor=actor,
        now=now,
        text=f"Note by {actor.label or actor.id}: {preview}",
        ref_type="partner_note",
        ref_id=note.id,
    )
    return note
