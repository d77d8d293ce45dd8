"""Several logins per partner: the owner (or the program team) invites colleagues and removes them.

A member sees everything the owner sees in the portal; only owners and staff with the write scope
manage who can log in. A partner always keeps at least one owner.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor
from partnerpay.kit.errors import Conflict, Forbidden, NotFound
from partnerpay.partners.activity import record_activity
from partnerpay.partners.admin import need_write
from partnerpay.partners.invitations import (
    MAY_LOG_IN,
    InvitationKind,
    InvitationStatus,
    new_invitation,
    status_filter,
)
from partnerpay.partners.models import Invitation, Partner, PartnerUser
from partnerpay.partners.service import check_email, get_partner

OWNER, MEMBER = "owner", "member"


def may_manage_members(session: Session, actor: Actor, partner_id: str) -> bool:
    """Staff and keys with the write scope, or an owner login of this very partner."""
    if actor.partner_id is None:
        return actor.can("write")
    if actor.partner_id != partner_id:
        return False
    user = session.get(PartnerUser, actor.id)
    return user is not None and user.partner_id == partner_id and user.role == OWNER


def _managed_partner(session: Session, actor: Actor, partner_id: str, what: str) -> Partner:
    partner = get_partner(session, actor, partner_id)  # 404 for another program's or another partner's
    if actor.partner_id is None:
        need_write(actor, what)
    elif not may_manage_members(session, actor, partner_id):
        raise Forbidden(f"{what} is for the owner of the partner account; ask your owner or the program team")
    return partner


def invite_member(
    session: Session, *, actor: Actor, partner_id: str, email: str, now: datetime
) -> tuple[PartnerUser, Invitation, str]:
    """A member login (no password yet) for another email and a link to set it, emailed through the outbox.

    Returns the login, the invitation and the link's token (shown once, never stored).
    """
    partner = _managed_partner(session, actor, partner_id, "inviting a team member")
    email = check_email(email).lower()
    holder = session.scalar(select(PartnerUser.partner_id).where(PartnerUser.email == email))
    if holder == partner.id:
        raise Conflict(f"{email} already has a login for {partner.name}", field="email")
    if holder is not None:
        raise Conflict(
            f"{email} already has a partner portal login (of another partner); use another email", field="email"
        )
    if partner.status not in MAY_LOG_IN:
        raise Conflict(f"partner {partner.name} is {partner.status}; no login can be added", field="partner_id")
    invitation, token = new_invitation(
        session, actor=actor, partner=partner, kind=InvitationKind.INVITATION, now=now, email=email, role=MEMBER
    )
    user = session.scalar(select(PartnerUser).where(PartnerUser.email == email))
    assert user is not None
    audit.record(
        session,
        actor=actor,
        action="partner_user.invite_member",
        object_type="partner_user",
        object_id=user.id,
        program_id=partner.program_id,
        now=now,
        after={"partner_id": partner.id, "email": email, "role": MEMBER, "invitation_id": invitation.id},
    )
    record_activity(
        session,
        partner_id=partner.id,
        kind="member.invited",
        actor=actor,
        now=now,
        text=f"{actor.label or actor.id} invited {email} as a team member",
        ref_type="partner_user",
        ref_id=user.id,
    )
    return user, invitation, token


def remove_member(session: Session, *, actor: Actor, partner_id: str, user_id: str, now: datetime) -> None:
    """The login stops working at once: its row is deleted (nothing references it) and its open links revoked.

    The audit trail and the timeline keep who it was. The last owner of a partner cannot be removed.
    """
    partner = _managed_partner(session, actor, partner_id, "removing a team member")
    user = session.get(PartnerUser, user_id)
    if user is None or user.partner_id != partner.id:
        raise NotFound(f"login {user_id} not found for partner {partner_id}", field="user_id")
    if user.role == OWNER:
        owners = session.scalar(
            select(func.count())
            .select_from(PartnerUser)
            .where(PartnerUser.partner_id == partner.id, PartnerUser.role == OWNER)
        )
        if (owners or 0) <= 1:
            raise Conflict(f"{user.email} is the only owner of {partner.name} and cannot be removed", field="user_id")
    open_links = session.scalars(
        select(Invitation).where(
            Invitation.partner_id == partner.id,
            Invitation.email == user.email,
            status_filter(InvitationStatus.VALID, now),
        )
    ).all()
    for link in open_links:
        link.revoked_at = now
    before = {
        "partner_id": partner.id,
        "email": user.email,
        "role": user.role,
        "has_password": bool(user.password_hash),
    }
    email = user.email
    session.delete(user)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="partner_user.remove",
        object_type="partner_user",
        object_id=user_id,
        program_id=partner.program_id,
        now=now,
        before=before,
        after={"removed": True, "revoked_invitations": [link.id for link in open_links]},
    )
    record_activity(
        session,
        partner_id=partner.id,
        kind="member.removed",
        actor=actor,
        now=now,
        text=f"{actor.label or actor.id} removed the login of {email}",
        ref_type="partner_user",
        ref_id=user_id,
    )
