"""Staff users and API keys."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import ALL_SCOPES, Actor, ActorType
from partnerpay.auth.models import ApiKey, Role, StaffUser
from partnerpay.auth.passwords import DUMMY_HASH, hash_password, verify_password
from partnerpay.kit.errors import Conflict, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.partners.models import PartnerUser
from partnerpay.partners.service import check_email
from partnerpay.programs.service import get_program

KEY_PREFIX = "pp_"


def create_staff_user(
    session: Session, *, actor: Actor, email: str, role: str, password: str, now: datetime
) -> StaffUser:
    email = check_email(email).lower()
    if role not in {r.value for r in Role}:
        raise ValidationError(f"role must be one of {[r.value for r in Role]}, got {role!r}", field="role")
    if session.scalar(select(StaffUser.id).where(StaffUser.email == email)):
        raise Conflict(f"a staff user with email {email} already exists", field="email")
    user = StaffUser(id=new_id("usr"), email=email, role=role, password_hash=hash_password(password), created_at=now)
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="staff_user.create",
        object_type="staff_user",
        object_id=user.id,
        now=now,
        after={"email": email, "role": role},
    )
    return user


def authenticate_staff(session: Session, email: str, password: str) -> StaffUser | None:
    user = session.scalar(select(StaffUser).where(StaffUser.email == email.strip().lower()))
    if user is None:
        verify_password(DUMMY_HASH, password)
        return None
    return user if verify_password(user.password_hash, password) else None


def authenticate_partner_user(session: Session, email: str, password: str) -> PartnerUser | None:
    user = session.scalar(select(PartnerUser).where(PartnerUser.email == email.strip().lower()))
    if user is None or user.password_hash is None:  # no password yet: the invitation sets it
        verify_password(DUMMY_HASH, password)
        return None
    return user if verify_password(user.password_hash, password) else None


def staff_actor(user: StaffUser) -> Actor:
    from partnerpay.auth.actor import ROLE_SCOPES

    return Actor(ActorType.STAFF, user.id, ROLE_SCOPES[user.role], label=user.email)


def hash_secret(secret: str) -> str:
    # API keys carry 256 random bits, so a fast hash is enough (no dictionary to attack).
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(
    session: Session,
    *,
    actor: Actor,
    now: datetime,
    program_id: str | None = None,
    scopes: list[str] | None = None,
    name: str = "",
) -> tuple[ApiKey, str]:
    """Returns the stored key and the secret, which is shown once and never stored in clear."""
    if program_id is not None:
        get_program(session, actor, program_id)
    chosen = sorted(set(scopes or ["read", "write", "approve", "payouts"]))
    unknown = set(chosen) - ALL_SCOPES
    if unknown:
        raise ValidationError(f"unknown scopes {sorted(unknown)}; known: {sorted(ALL_SCOPES)}", field="scopes")
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=new_id("key"),
        program_id=program_id,
        name=name,
        secret_hash=hash_secret(secret),
        scopes=chosen,
        created_at=now,
    )
    session.add(key)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="api_key.create",
        object_type="api_key",
        object_id=key.id,
        program_id=program_id,
        now=now,
        after={"scopes": chosen, "name": name},
    )
    return key, secret


def api_key_actor(session: Session, secret: str) -> Actor | None:
    key = session.scalar(select(ApiKey).where(ApiKey.secret_hash == hash_secret(secret)))
    if key is None or key.revoked_at is not None:
        return None
    return Actor(ActorType.API_KEY, key.id, frozenset(key.scopes), program_id=key.program_id, label=key.name)
