"""The recruitment pipeline: prospects the team is recruiting, their stage, next step and due date."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import Conflict, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.paging import Page, paginate
from partnerpay.partners.admin import need_write, staff_user
from partnerpay.partners.models import Invitation, Partner, Prospect, ProspectStage
from partnerpay.partners.service import check_email
from partnerpay.programs.service import get_program

STAGES = [s.value for s in ProspectStage]
EDITABLE = ("company", "contact_name", "email", "website", "source", "stage", "next_step", "due_on", "owner_id")
# A prospect that is already a partner, or was dropped, is not invited again.
NOT_CONVERTIBLE = {ProspectStage.ACTIVE.value, ProspectStage.DROPPED.value}


def snapshot(prospect: Prospect) -> dict[str, Any]:
    return {
        "company": prospect.company,
        "contact_name": prospect.contact_name,
        "email": prospect.email,
        "website": prospect.website,
        "source": prospect.source,
        "stage": prospect.stage,
        "next_step": prospect.next_step,
        "due_on": prospect.due_on.isoformat() if prospect.due_on else None,
        "owner_id": prospect.owner_id,
        "partner_id": prospect.partner_id,
    }


def get_prospect(session: Session, actor: Actor, prospect_id: str) -> Prospect:
    """The prospect, or 404 when it does not exist or belongs to a program the actor may not see."""
    prospect = session.get(Prospect, prospect_id)
    if prospect is None or not actor.sees_program(prospect.program_id) or actor.partner_id is not None:
        raise NotFound(f"prospect {prospect_id} not found", field="prospect_id")
    return prospect


def check_stage(stage: object) -> str:
    if stage not in STAGES:
        raise ValidationError(f"stage must be one of {', '.join(STAGES)}; got {stage!r}", field="stage")
    return str(stage)


def _text(values: Mapping[str, Any], field: str, limit: int) -> str:
    value = values.get(field)
    text = "" if value is None else str(value).strip()
    if len(text) > limit:
        raise ValidationError(f"{field} has at most {limit} characters, got {len(text)}", field=field)
    return text


def _check(session: Session, values: Mapping[str, Any]) -> dict[str, Any]:
    company = _text(values, "company", 200)
    if not company:
        raise ValidationError("company must not be empty", field="company")
    email = _text(values, "email", 320) or None
    if email is not None:
        email = check_email(email)
    website = _text(values, "website", 500) or None
    if website is not None and not website.lower().startswith(("http://", "https://")):
        raise ValidationError(f"website must start with http:// or https://, got {website!r}", field="website")
    due_on = values.get("due_on")
    if due_on is not None and (isinstance(due_on, datetime) or not isinstance(due_on, date)):
        raise ValidationError(f"due_on must be a date such as 2026-03-01, got {due_on!r}", field="due_on")
    owner_id = values.get("owner_id") or None
    if owner_id is not None:
        staff_user(session, str(owner_id))
    return {
        "company": company,
        "contact_name": _text(values, "contact_name", 200),
        "email": email,
        "website": website,
        "source": _text(values, "source", 64),
        "stage": check_stage(values.get("stage") or ProspectStage.PROSPECT.value),
        "next_step": _text(values, "next_step", 2000),
        "due_on": due_on,
        "owner_id": owner_id,
    }


def _unknown(fields: Mapping[str, Any]) -> None:
    unknown = sorted(set(fields) - set(EDITABLE))
    if unknown:
        raise ValidationError(f"unknown prospect field {unknown[0]!r}", field=unknown[0])


def create_prospect(session: Session, *, actor: Actor, program_id: str, now: datetime, **fields: Any) -> Prospect:
    """A partner the team wants to recruit, at stage `prospect` unless told otherwise."""
    need_write(actor, "adding a prospect")
    _unknown(fields)
    program = get_program(session, actor, program_id)
    values = _check(session, fields)
    prospect = Prospect(id=new_id("prs"), program_id=program.id, created_at=now, updated_at=now, **values)
    session.add(prospect)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="prospect.create",
        object_type="prospect",
        object_id=prospect.id,
        program_id=program.id,
        now=now,
        after=snapshot(prospect),
    )
    return prospect


def update_prospect(
    session: Session, *, actor: Actor, prospect_id: str, changes: Mapping[str, Any], now: datetime
) -> Prospect:
    """Change some fields (stage, next step, due date, owner…); the whole result is validated."""
    need_write(actor, "editing a prospect")
    _unknown(changes)
    prospect = get_prospect(session, actor, prospect_id)
    before = snapshot(prospect)
    values = _check(session, {key: getattr(prospect, key) for key in EDITABLE} | dict(changes))
    for key, value in values.items():
        setattr(prospect, key, value)
    after = snapshot(prospect)
    if after != before:
        prospect.updated_at = now
        audit.record(
            session,
            actor=actor,
            action="prospect.update",
            object_type="prospect",
            object_id=prospect.id,
            program_id=prospect.program_id,
            now=now,
            before=before,
            after=after,
        )
    session.flush()
    return prospect


def convert_prospect(
    session: Session, *, actor: Actor, prospect_id: str, now: datetime
) -> tuple[Prospect, Partner, Invitation, str]:
    """Invite the prospect as a partner (the invitation email goes through the outbox); stage becomes invited.

    Returns the prospect, the new partner, the invitation and the invitation token (shown once).
    """
    # Imported here: invitations is its own slice and imports more of the partner package than we do.
    from partnerpay.partners.invitations import invite_partner

    need_write(actor, "inviting a prospect")
    prospect = get_prospect(session, actor, prospect_id)
    if prospect.partner_id is not None:
        raise Conflict(f"prospect {prospect.company} was already invited as partner {prospect.partner_id}")
    if prospect.stage in NOT_CONVERTIBLE:
        raise ValidationError(f"prospect {prospect.company} is {prospect.stage}; it cannot be invited", field="stage")
    if not prospect.email:
        raise ValidationError(f"add an email address for {prospect.company} before inviting", field="email")
    before = snapshot(prospect)
    partner, invitation, token = invite_partner(
        session,
        actor=actor,
        program_id=prospect.program_id,
        name=prospect.company,
        email=prospect.email,
        now=now,
        prospect_id=prospect.id,
    )
    prospect.partner_id = partner.id
    prospect.stage = ProspectStage.INVITED.value
    prospect.updated_at = now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="prospect.convert",
        object_type="prospect",
        object_id=prospect.id,
        program_id=prospect.program_id,
        now=now,
        before=before,
        after=snapshot(prospect),
    )
    return prospect, partner, invitation, token


# Read side: the list and the board (kept beside the prospects they read, queries.py is full).


def is_overdue(prospect: Prospect, today: date) -> bool:
    """A due date in the past on a prospect still being worked on."""
    return prospect.due_on is not None and prospect.due_on < today and prospect.stage not in NOT_CONVERTIBLE


def prospects_stmt(
    actor: Actor, *, program_id: str | None = None, stage: str | None = None, owner_id: str | None = None
) -> Select[Prospect]:
    stmt = select(Prospect)
    if actor.program_id is not None:
        stmt = stmt.where(Prospect.program_id == actor.program_id)
    if program_id:
        stmt = stmt.where(Prospect.program_id == program_id)
    if stage:
        stmt = stmt.where(Prospect.stage == check_stage(stage))
    if owner_id:
        stmt = stmt.where(Prospect.owner_id == owner_id)
    return stmt


def list_prospects(
    session: Session,
    actor: Actor,
    *,
    program_id: str | None = None,
    stage: str | None = None,
    owner_id: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page[Prospect]:
    stmt = prospects_stmt(actor, program_id=program_id, stage=stage, owner_id=owner_id)
    return paginate(session, stmt, Prospect.id, cursor=cursor, limit=limit)


def board(
    session: Session, actor: Actor, *, program_id: str | None = None, owner_id: str | None = None
) -> list[tuple[str, list[Prospect]]]:
    """Every stage in pipeline order with its prospects, soonest due first (no due date last)."""
    stmt = prospects_stmt(actor, program_id=program_id, owner_id=owner_id).order_by(
        Prospect.due_on.is_(None), Prospect.due_on, Prospect.id
    )
    by_stage: dict[str, list[Prospect]] = {s: [] for s in STAGES}
    for prospect in session.scalars(stmt):
        by_stage.setdefault(prospect.stage, []).append(prospect)
    return list(by_stage.items())
