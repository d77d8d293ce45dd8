"""Writing partners (the onboarding issue grows this into applications, terms and payout details)."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.auth.passwords import hash_password
from partnerpay.kit.errors import Conflict, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.partners.models import Partner, PartnerStatus, PartnerUser
from partnerpay.programs.service import get_program

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z]{2,}$")
COUNTRY = re.compile(r"^[A-Z]{2}$")
RECRUITER = "recruited_by_id"
_MAX_CHAIN = 10_000  # a guard only: every write checks for a cycle, so a chain always ends


def check_email(email: str, field: str = "email") -> str:
    email = email.strip()
    if not EMAIL.match(email) or len(email) > 320:
        raise ValidationError(f"{email!r} is not a valid email address", field=field)
    return email


_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def referral_code_for(name: str) -> str:
    """A readable, unguessable code: name slug plus random suffix (acme-7k2q)."""
    return referral_codes_for([name])[0]


def referral_codes_for(names: list[str]) -> list[str]:
    """referral_code_for for many names, with one call for all the randomness (imports make 50,000 at once)."""
    suffixes = secrets.token_hex(3 * len(names))
    sub = _NOT_SLUG.sub
    return [
        f"{sub('-', name.lower()).strip('-')[:24] or 'partner'}-{suffixes[6 * i : 6 * i + 6]}"
        for i, name in enumerate(names)
    ]


def create_partner(
    session: Session,
    *,
    actor: Actor,
    program_id: str,
    name: str,
    email: str,
    now: datetime,
    group_id: str | None = None,
    country: str | None = None,
    referral_code: str | None = None,
    status: PartnerStatus = PartnerStatus.ACTIVE,
    source: str = "staff",
    recruited_by_id: str | None = None,
) -> Partner:
    get_program(session, actor, program_id)
    if recruited_by_id is not None:
        check_recruiter(session, program_id=program_id, partner_id=None, recruiter_id=recruited_by_id)
    if not name.strip():
        raise ValidationError("name must not be empty", field="name")
    email = check_email(email)
    if country is not None and not COUNTRY.match(country):
        raise ValidationError(f"country must be an ISO 3166 alpha-2 code such as DE, got {country!r}", field="country")
    if session.scalar(select(Partner.id).where(Partner.program_id == program_id, Partner.email == email)):
        raise Conflict(f"a partner with email {email} already exists in this program", field="email")
    code = referral_code or referral_code_for(name)
    if session.scalar(select(Partner.id).where(Partner.referral_code == code)):
        raise Conflict(f"referral code {code} is taken", field="referral_code")
    partner = Partner(
        id=new_id("ptn"),
        program_id=program_id,
        name=name.strip(),
        email=email,
        referral_code=code,
        status=status.value,
        source=source,
        group_id=group_id,
        country=country,
        created_at=now,
        recruited_by_id=recruited_by_id,
    )
    session.add(partner)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="partner.create",
        object_type="partner",
        object_id=partner.id,
        program_id=program_id,
        now=now,
        after={
            "name": partner.name,
            "email": partner.email,
            "referral_code": code,
            "status": partner.status,
            **({RECRUITER: recruited_by_id} if recruited_by_id else {}),
        },
    )
    return partner


def check_recruiter(session: Session, *, program_id: str, partner_id: str | None, recruiter_id: str) -> Partner:
    """The recruiter, when it is another partner of the same program and not recruited (directly or through
    others) by this partner; else a 422 naming recruited_by_id. `partner_id` is None for a partner being made."""
    recruiter = session.get(Partner, recruiter_id)
    if recruiter is None or recruiter.program_id != program_id:
        raise ValidationError(
            f"there is no partner {recruiter_id!r} in this program to be the recruiter", field=RECRUITER
        )
    if recruiter.id == partner_id:
        raise ValidationError("a partner cannot be its own recruiter", field=RECRUITER)
    if partner_id is None:
        return recruiter
    chain = [recruiter.name]
    above = recruiter.recruited_by_id
    while above is not None and len(chain) < _MAX_CHAIN:
        row = session.execute(select(Partner.name, Partner.recruited_by_id).where(Partner.id == above)).one()
        chain.append(row.name)
        if above == partner_id:
            raise ValidationError(
                f"{recruiter.name} is a recruit of this partner ({' → '.join(reversed(chain))}): a partner's "
                "recruiter cannot be one of its own recruits",
                field=RECRUITER,
            )
        above = row.recruited_by_id
    return recruiter


def get_partner(session: Session, actor: Actor, partner_id: str) -> Partner:
    """The partner, or 404 when it is another program's or (for a partner user) another partner."""
    partner = session.get(Partner, partner_id)
    if partner is None or not actor.sees(partner.program_id, partner.id):
        raise NotFound(f"partner {partner_id} not found", field="partner_id")
    return partner


def add_partner_user(
    session: Session,
    *,
    actor: Actor,
    partner_id: str,
    email: str,
    password: str | None,
    now: datetime,
    role: str = "owner",
) -> PartnerUser:
    """A portal login for a partner; without a password, an invitation link sets it later."""
    partner = get_partner(session, actor, partner_id)
    email = check_email(email).lower()  # logins match emails case-insensitively
    if session.scalar(select(PartnerUser.id).where(PartnerUser.email == email)):
        raise Conflict(f"a portal user with email {email} already exists", field="email")
    user = PartnerUser(
        id=new_id("pu"), partner_id=partner.id, email=email, role=role,
        password_hash=hash_password(password) if password is not None else None, created_at=now,
    )  # fmt: skip
    session.add(user)
    session.flush()
    audit.record(
        session, actor=actor, action="partner_user.create", object_type="partner_user", object_id=user.id,
        program_id=partner.program_id, now=now,
        after={"partner_id": partner.id, "email": email, "role": role, "has_password": password is not None},
    )  # fmt: skip
    return user
