"""Applications: the public form makes an `applied` partner; staff approve (welcome email with a login
link) or decline with a reason, one by one or in bulk; a program may approve every application itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import pycountry
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.kit.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationError
from partnerpay.kit.paging import Page, paginate
from partnerpay.messaging.email import enqueue_email
from partnerpay.partners.activity import record_activity
from partnerpay.partners.admin import assign_owner, need_write, visible_partners
from partnerpay.partners.invitations import InvitationKind, check_login_email_free, issue_invitation
from partnerpay.partners.lifecycle import change_status
from partnerpay.partners.models import Invitation, Partner, PartnerStatus
from partnerpay.partners.service import check_email, create_partner
from partnerpay.programs.models import Program
from partnerpay.programs.schemas import FIELD_LABELS, ApplicationFormConfig, StandardField
from partnerpay.programs.service import form_config

# Whoever fills in the public form: no scopes, sees only what the form needs.
APPLICANT = Actor(ActorType.SYSTEM, "application_form", frozenset(), label="public application form")
MAX_ANSWER = 2000
AUTO_APPROVED = "approved by the program's auto-approve rule"


def check_website(value: str, field: str = "website") -> str:
    """An http(s) address of a real-looking host; "example.com" becomes "https://example.com"."""
    text = value.strip()
    candidate = text if "://" in text else f"https://{text}"
    parts = urlsplit(candidate)
    host = parts.hostname or ""
    if (
        parts.scheme not in ("http", "https")
        or "." not in host
        or host.startswith(".")
        or host.endswith(".")
        or any(c.isspace() or c in "\"'<>\\" for c in text)
        or len(candidate) > 500
    ):
        raise ValidationError(f"website must be an address such as https://example.com, got {value!r}", field=field)
    return candidate


def check_country_code(value: str, field: str = "country") -> str:
    code = value.strip().upper()
    if len(code) != 2 or pycountry.countries.get(alpha_2=code) is None:
        raise ValidationError(f"country must be an ISO 3166 two-letter code such as DE, not {value!r}", field=field)
    return code


def _text(data: Mapping[str, Any], field: str, label: str, *, required: bool, limit: int = 200) -> str:
    raw = data.get(field)
    value = raw.strip() if isinstance(raw, str) else ""
    if raw is not None and not isinstance(raw, str):
        raise ValidationError(f"{label} must be text", field=field)
    if required and not value:
        raise ValidationError(f"{label} is required", field=field)
    if len(value) > limit:
        raise ValidationError(f"{label} must have at most {limit} characters, got {len(value)}", field=field)
    return value


def check_application(config: ApplicationFormConfig, data: Mapping[str, Any]) -> dict[str, Any]:
    """The form's answers, checked field by field in the order shown; unknown fields are ignored."""
    values: dict[str, Any] = {
        "name": _text(data, "name", "Your name", required=True),
        "email": check_email(_text(data, "email", "Email", required=True, limit=320)).lower(),
    }
    standard: tuple[StandardField, ...] = ("company", "website", "audience", "country")
    for name in standard:
        mode = config.mode(name)
        limit = MAX_ANSWER if name == "audience" else 500 if name == "website" else 200
        value = (
            "" if mode == "hidden" else _text(data, name, FIELD_LABELS[name], required=mode == "required", limit=limit)
        )
        if value and name == "website":
            value = check_website(value)
        if value and name == "country":
            value = check_country_code(value)
        values[name] = value or None
    values["answers"] = [
        {
            "key": q.key,
            "label": q.label,
            "answer": _text(data, q.key, q.label, required=q.required, limit=MAX_ANSWER) or None,
        }
        for q in config.questions
    ]
    return values


def submit_application(
    session: Session, *, program_id: str, data: Mapping[str, Any], now: datetime, ip: str | None = None
) -> Partner:
    """An `applied` partner with the answers; approved at once when the program auto-approves."""
    program = session.get(Program, program_id)
    if program is None:
        raise NotFound(f"program {program_id} not found", field="program_id")
    if not program.applications_open:
        raise Forbidden(f"{program.name} is not taking applications at the moment", field="program_id")
    values = check_application(form_config(program), data)
    email = values["email"]
    if session.scalar(select(Partner.id).where(Partner.program_id == program.id, func.lower(Partner.email) == email)):
        raise Conflict(
            f"{email} has already applied to or is a partner of {program.name}; "
            "if you have not heard back, reply to the program team instead of applying again",
            field="email",
        )
    partner = create_partner(
        session,
        actor=APPLICANT,
        program_id=program.id,
        name=values["name"],
        email=email,
        now=now,
        country=values["country"],
        status=PartnerStatus.APPLIED,
        source="application",
    )
    partner.company = values["company"]
    partner.website = values["website"]
    partner.owner_id = program.default_owner_id
    partner.application = {"audience": values["audience"], "answers": values["answers"], "ip": ip}
    session.flush()
    audit.record(
        session,
        actor=APPLICANT,
        action="partner.apply",
        object_type="partner",
        object_id=partner.id,
        program_id=program.id,
        now=now,
        after={
            "company": partner.company,
            "website": partner.website,
            "country": partner.country,
            "owner_id": partner.owner_id,
            "ip": ip,
        },
    )
    record_activity(
        session, partner_id=partner.id, kind="application", actor=APPLICANT, now=now, text="Applied on the public form"
    )
    if program.auto_approve:
        approve_applications(session, actor=SYSTEM, partner_ids=[partner.id], now=now, reason=AUTO_APPROVED)
    return partner


def _applicants(session: Session, actor: Actor, partner_ids: Sequence[str]) -> list[Partner]:
    partners = visible_partners(session, actor, partner_ids)
    for partner in partners:
        if partner.status != PartnerStatus.APPLIED.value:
            raise InvalidTransition(
                f"{partner.name} ({partner.id}) is {partner.status}, not applied; nothing was changed",
                field="partner_ids",
            )
    return partners


def approve_applications(
    session: Session, *, actor: Actor, partner_ids: Sequence[str], now: datetime, reason: str = ""
) -> list[tuple[Partner, Invitation, str]]:
    """Approve every partner or none: active, an owner, and a welcome email with a login link each.

    Returns (partner, invitation, link token) per partner; the token is shown once, never stored."""
    need_write(actor, "approving applications")
    partners = _applicants(session, actor, partner_ids)
    for partner in partners:
        check_login_email_free(session, partner.email, partner.id)
    programs = {p.program_id for p in partners}
    owners = dict(session.execute(select(Program.id, Program.default_owner_id).where(Program.id.in_(programs))).all())
    approved = []
    for partner in partners:
        change_status(session, actor=actor, partner_id=partner.id, to=PartnerStatus.ACTIVE, now=now, reason=reason)
        owner = actor.id if actor.type is ActorType.STAFF else owners.get(partner.program_id)
        if partner.owner_id is None and owner is not None:
            assign_owner(session, actor=actor, partner_ids=[partner.id], owner_id=owner, now=now)
        invitation, token = issue_invitation(
            session, actor=actor, partner_id=partner.id, now=now, kind=InvitationKind.WELCOME
        )
        approved.append((partner, invitation, token))
    session.flush()
    return approved


def decline_applications(
    session: Session, *, actor: Actor, partner_ids: Sequence[str], reason: str, now: datetime
) -> list[Partner]:
    """Decline every partner or none; the reason stays with the team, the applicant gets a short, kind email."""
    need_write(actor, "declining applications")
    if not reason.strip():
        raise ValidationError("a reason is required to decline an application (it stays with the team)", field="reason")
    if len(reason) > 2000:
        raise ValidationError("reason must have at most 2000 characters", field="reason")
    partners = _applicants(session, actor, partner_ids)
    programs = {p.program_id for p in partners}
    names = dict(session.execute(select(Program.id, Program.name).where(Program.id.in_(programs))).all())
    for partner in partners:
        change_status(session, actor=actor, partner_id=partner.id, to=PartnerStatus.DECLINED, now=now, reason=reason)
        program = names.get(partner.program_id, "the partner program")
        enqueue_email(
            session,
            to=partner.email,
            subject=f"Your application to the {program} partner program",
            text=(
                f"Hello {partner.name},\n\nthank you for applying to the {program} partner program. "
                "After reviewing your application we are not able to accept it at this time.\n\n"
                "Thank you for your interest.\n"
            ),
            now=now,
        )
    return partners


def application_queue(
    session: Session, actor: Actor, *, program_id: str | None = None, cursor: str | None = None, limit: int = 50
) -> Page[Partner]:
    """Applications waiting for a decision, oldest first (ids are time-ordered)."""
    stmt = select(Partner).where(Partner.status == PartnerStatus.APPLIED.value)
    if actor.program_id is not None:
        stmt = stmt.where(Partner.program_id == actor.program_id)
    if program_id:
        stmt = stmt.where(Partner.program_id == program_id)
    return paginate(session, stmt, Partner.id, cursor=cursor, limit=limit)
