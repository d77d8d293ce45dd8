"""Invitation links: their kinds, statuses, errors and read queries (the writes are in invitations.py)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement, and_, select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import Conflict, NotFound
from partnerpay.kit.paging import Page, check_limit, paginate
from partnerpay.partners.models import Invitation, PartnerStatus

VALID_FOR = timedelta(days=7)
# Partners who may hold a portal login: a suspended partner still sees what is payable.
MAY_LOG_IN = (PartnerStatus.ACTIVE.value, PartnerStatus.SUSPENDED.value)


class InvitationKind(StrEnum):
    INVITATION = "invitation"  # staff invited the partner directly
    WELCOME = "welcome"  # an application was approved
    RESET = "reset"  # a new password for an existing login


class InvitationStatus(StrEnum):
    VALID = "valid"
    EXPIRED = "expired"
    USED = "used"
    REVOKED = "revoked"


class InvitationNotFound(NotFound):
    code = "invitation_not_found"


class InvitationUsed(Conflict):
    code = "invitation_used"


class InvitationRevoked(Conflict):
    code = "invitation_revoked"


class InvitationExpired(Conflict):
    code = "invitation_expired"


def hash_token(token: str) -> str:
    # 256 random bits: a fast hash is enough (nothing to guess), and it makes the lookup an index hit.
    return hashlib.sha256(token.encode()).hexdigest()


def invitation_status(invitation: Invitation, now: datetime) -> InvitationStatus:
    if invitation.used_at is not None:
        return InvitationStatus.USED
    if invitation.revoked_at is not None:
        return InvitationStatus.REVOKED
    if invitation.expires_at <= now:
        return InvitationStatus.EXPIRED
    return InvitationStatus.VALID


def status_filter(status: InvitationStatus, now: datetime) -> ColumnElement[bool]:
    open_ = and_(Invitation.used_at.is_(None), Invitation.revoked_at.is_(None))
    return {
        InvitationStatus.USED: Invitation.used_at.is_not(None),
        InvitationStatus.REVOKED: and_(Invitation.used_at.is_(None), Invitation.revoked_at.is_not(None)),
        InvitationStatus.EXPIRED: and_(open_, Invitation.expires_at <= now),
        InvitationStatus.VALID: and_(open_, Invitation.expires_at > now),
    }[status]


def get_invitation(session: Session, actor: Actor, invitation_id: str) -> Invitation:
    invitation = session.get(Invitation, invitation_id)
    if invitation is None or not actor.sees_program(invitation.program_id) or actor.partner_id is not None:
        raise NotFound(f"invitation {invitation_id} not found", field="invitation_id")
    return invitation


def list_invitations(
    session: Session,
    actor: Actor,
    *,
    now: datetime,
    program_id: str | None = None,
    status: InvitationStatus | None = None,
    cursor: str | None = None,
    limit: int = 50,
    newest_first: bool = False,
) -> Page[Invitation]:
    stmt = select(Invitation)
    if actor.program_id is not None:
        stmt = stmt.where(Invitation.program_id == actor.program_id)
    if program_id:
        stmt = stmt.where(Invitation.program_id == program_id)
    if status is not None:
        stmt = stmt.where(status_filter(status, now))
    if not newest_first:
        return paginate(session, stmt, Invitation.id, cursor=cursor, limit=limit)
    if cursor:
        stmt = stmt.where(Invitation.id < cursor)
    rows = list(session.scalars(stmt.order_by(Invitation.id.desc()).limit(check_limit(limit) + 1)))
    return Page(rows[:limit], rows[limit - 1].id if len(rows) > limit else None)
