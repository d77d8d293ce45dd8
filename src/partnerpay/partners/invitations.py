"""Portal invitations: a signed, expiring, single-use link to set a password.

The link carries `secrets.token_urlsafe(32)`; only its SHA-256 is stored. A link is valid for
seven days and once; sending a new one revokes the partner's open ones, so only the newest works.
"""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.auth.passwords import hash_password
from partnerpay.kit.errors import Conflict, NotFound
from partnerpay.kit.ids import new_id
from partnerpay.messaging.email import enqueue_email, login_link_email
from partnerpay.partners.activity import record_activity
from partnerpay.partners.admin import need_write
from partnerpay.partners.invitation_rules import (
    MAY_LOG_IN,
    VALID_FOR,
    InvitationExpired,
    InvitationKind,
    InvitationNotFound,
    InvitationRevoked,
    InvitationStatus,
    InvitationUsed,
    get_invitation,
    hash_token,
    invitation_status,
    list_invitations,
    status_filter,
)
from partnerpay.partners.models import Invitation, Partner, PartnerUser, ProspectStage
from partnerpay.partners.service import add_partner_user, check_email, create_partner, get_partner
from partnerpay.programs.models import Program


def check_login_email_free(session: Session, email: str, partner_id: str | None = None) -> None:
    """Portal logins are found by email, so one email is one login: refuse one held by another partner."""
    holder = session.scalar(select(PartnerUser.partner_id).where(PartnerUser.email == email.lower()))
    if holder is not None and holder != partner_id:
        raise Conflict(
            f"{email} already has a partner portal login (of another partner); use another email for this partner",
            field="email",
        )


def _portal_user(
    session: Session,
    *,
    actor: Actor,
    partner: Partner,
    now: datetime,
    email: str | None = None,
    role: str | None = None,
) -> PartnerUser:
    """The login for `email` (default: the partner's own), created without a password (the invitation sets it).

    Unless `role` says otherwise, the first login of a partner is its owner and every later one a member.
    """
    email = (email or partner.email).lower()
    check_login_email_free(session, email, partner.id)
    user = session.scalar(select(PartnerUser).where(PartnerUser.email == email))
    if user is not None:
        return user
    first = session.scalar(select(func.count()).select_from(PartnerUser).where(PartnerUser.partner_id == partner.id))
    return add_partner_user(
        session, actor=actor, partner_id=partner.id, email=email, password=None, now=now,
        role=role or ("owner" if not first else "member"),
    )  # fmt: skip


def new_invitation(
    session: Session,
    *,
    actor: Actor,
    partner: Partner,
    kind: InvitationKind,
    now: datetime,
    email: str | None = None,
    role: str | None = None,
) -> tuple[Invitation, str]:
    """Revoke the open links for this login, store a new one (hash only) and email it through the outbox.

    `email` is the login's (default: the partner's own). The open links of the partner's other member
    logins stay valid: inviting a colleague must not break the link someone else is about to use.
    """
    user = _portal_user(session, actor=actor, partner=partner, now=now, email=email, role=role)
    if user.password_hash is not None and kind is not InvitationKind.RESET:
        raise Conflict(
            f"{user.email} already set a password and can log in at /portal/login; send a password reset instead",
            field="email",
        )
    other_members = select(PartnerUser.email).where(
        PartnerUser.partner_id == partner.id, PartnerUser.role == "member", PartnerUser.email != user.email
    )
    still_open = session.scalars(
        select(Invitation).where(
            Invitation.partner_id == partner.id,
            status_filter(InvitationStatus.VALID, now),
            Invitation.email.not_in(other_members),
        )
    ).all()
    for old in still_open:
        old.revoked_at = now
    open_ids = [old.id for old in still_open]
    token = secrets.token_urlsafe(32)
    invitation = Invitation(
        id=new_id("inv"),
        program_id=partner.program_id,
        partner_id=partner.id,
        email=user.email,
        token_hash=hash_token(token),
        kind=kind.value,
        expires_at=now + VALID_FOR,
        created_by=actor.id,
        created_at=now,
    )
    session.add(invitation)
    session.flush()
    program = session.get(Program, partner.program_id)
    assert program is not None
    subject, text = login_link_email(
        kind.value,
        program=program.name,
        partner=partner.name,
        code=partner.referral_code,
        token=token,
        expires_at=invitation.expires_at,
    )
    enqueue_email(session, to=user.email, subject=subject, text=text, now=now)
    audit.record(
        session,
        actor=actor,
        action="invitation.create",
        object_type="invitation",
        object_id=invitation.id,
        program_id=partner.program_id,
        now=now,
        after={
            "partner_id": partner.id,
            "email": user.email,
            "kind": kind.value,
            "expires_at": invitation.expires_at.isoformat(),
            "revoked": open_ids,
        },
    )
    record_activity(
        session,
        partner_id=partner.id,
        kind=f"invitation.{kind.value}",
        actor=actor,
        now=now,
        text=f"Login link ({kind.value}) emailed to {user.email}, valid until {invitation.expires_at:%d %b %Y}",
        ref_type="invitation",
        ref_id=invitation.id,
    )
    return invitation, token


def invite_partner(
    session: Session,
    *,
    actor: Actor,
    program_id: str,
    name: str,
    email: str,
    now: datetime,
    prospect_id: str | None = None,
) -> tuple[Partner, Invitation, str]:
    """An active partner (no application), its portal login without a password, and an emailed link.

    Returns the partner, the invitation and the link's token (shown once, never stored).
    """
    from partnerpay.partners.prospects import get_prospect  # prospects imports this module

    need_write(actor, "inviting a partner")
    email = check_email(email).lower()
    prospect = get_prospect(session, actor, prospect_id) if prospect_id else None
    if prospect is not None and prospect.program_id != program_id:
        raise NotFound(f"prospect {prospect_id} not found in program {program_id}", field="prospect_id")
    check_login_email_free(session, email)
    if session.scalar(select(Partner.id).where(Partner.program_id == program_id, func.lower(Partner.email) == email)):
        raise Conflict(f"a partner with email {email} already exists in this program", field="email")
    partner = create_partner(
        session, actor=actor, program_id=program_id, name=name, email=email, now=now, source="invitation"
    )
    program = session.get(Program, program_id)
    assert program is not None
    partner.owner_id = actor.id if actor.type is ActorType.STAFF else program.default_owner_id
    invitation, token = new_invitation(session, actor=actor, partner=partner, kind=InvitationKind.INVITATION, now=now)
    if prospect is not None:
        prospect.stage = ProspectStage.INVITED.value
        prospect.partner_id = partner.id
        prospect.updated_at = now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="partner.invite",
        object_type="partner",
        object_id=partner.id,
        program_id=program_id,
        now=now,
        after={"invitation_id": invitation.id, "owner_id": partner.owner_id, "prospect_id": prospect_id},
    )
    return partner, invitation, token


def issue_invitation(
    session: Session, *, actor: Actor, partner_id: str, now: datetime, kind: InvitationKind = InvitationKind.WELCOME
) -> tuple[Invitation, str]:
    """A login link for an existing partner (the welcome of an approved applicant); returns it and its token."""
    need_write(actor, "sending a login link")
    partner = get_partner(session, actor, partner_id)
    if partner.status not in MAY_LOG_IN:
        raise Conflict(f"partner {partner.name} is {partner.status}; approve the partner first", field="partner_id")
    return new_invitation(session, actor=actor, partner=partner, kind=kind, now=now)


def resend_invitation(session: Session, *, actor: Actor, invitation_id: str, now: datetime) -> tuple[Invitation, str]:
    """A fresh link of the same kind; the old one (and any other open one) stops working."""
    need_write(actor, "resending an invitation")
    old = get_invitation(session, actor, invitation_id)
    if old.used_at is not None:
        raise InvitationUsed(
            f"invitation {old.id} was used on {old.used_at:%d %b %Y}: {old.email} can log in at /portal/login",
            field="invitation_id",
        )
    partner = get_partner(session, actor, old.partner_id)
    if partner.status not in MAY_LOG_IN:
        raise Conflict(f"partner {partner.name} is {partner.status}; no login link is sent", field="invitation_id")
    login = session.scalar(
        select(PartnerUser.email).where(
            PartnerUser.partner_id == partner.id, PartnerUser.email == old.email, PartnerUser.role == "member"
        )
    )
    # A member's link goes to the member again; the partner's own link follows the partner's current email.
    email = login if login is not None and login != partner.email.lower() else None
    return new_invitation(session, actor=actor, partner=partner, kind=InvitationKind(old.kind), now=now, email=email)


def revoke_invitation(session: Session, *, actor: Actor, invitation_id: str, now: datetime) -> Invitation:
    """The link stops working at once; revoking twice changes nothing."""
    need_write(actor, "revoking an invitation")
    invitation = get_invitation(session, actor, invitation_id)
    if invitation.used_at is not None:
        raise InvitationUsed(
            f"invitation {invitation.id} was already used; it cannot be revoked", field="invitation_id"
        )
    if invitation.revoked_at is not None:
        return invitation
    before = invitation_status(invitation, now).value
    invitation.revoked_at = now
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="invitation.revoke",
        object_type="invitation",
        object_id=invitation.id,
        program_id=invitation.program_id,
        now=now,
        before={"status": before},
        after={"status": InvitationStatus.REVOKED.value},
    )
    record_activity(
        session,
        partner_id=invitation.partner_id,
        kind="invitation.revoked",
        actor=actor,
        now=now,
        text=f"Login link for {invitation.email} revoked by {actor.label or actor.id}",
        ref_type="invitation",
        ref_id=invitation.id,
    )
    return invitation


def check_invitation(session: Session, *, token: str, now: datetime) -> Invitation:
    """The invitation behind a link, or an error that says why the link does not work and what to do."""
    invitation = session.scalar(select(Invitation).where(Invitation.token_hash == hash_token(token)))
    if invitation is None:
        raise InvitationNotFound(
            "This link is not a valid invitation. Check that you opened the whole link from the email, "
            "or ask the program team for a new one.",
            field="token",
        )
    status = invitation_status(invitation, now)
    if status is InvitationStatus.USED:
        raise InvitationUsed(
            "This link was already used to set a password. Log in at /portal/login; "
            "if you forgot the password, ask the program team for a new link.",
            field="token",
        )
    if status is InvitationStatus.REVOKED:
        raise InvitationRevoked(
            "This link was replaced by a newer one or withdrawn. Use the link in the most recent email, "
            "or ask the program team for a new one.",
            field="token",
        )
    if status is InvitationStatus.EXPIRED:
        raise InvitationExpired(
            f"This link expired on {invitation.expires_at:%d %b %Y at %H:%M} UTC. "
            "Ask the program team to send you a new one.",
            field="token",
        )
    partner = session.get(Partner, invitation.partner_id)
    if partner is None or partner.status not in MAY_LOG_IN:
        raise InvitationRevoked(
            "This partner account is not active, so the link no longer works. Contact the program team.",
            field="token",
        )
    return invitation


def accept_invitation(session: Session, *, token: str, password: str, now: datetime) -> PartnerUser:
    """Set the portal password (argon2) through a valid link; the link is used up in the same transaction."""
    invitation = check_invitation(session, token=token, now=now)
    password_hash = hash_password(password)  # refuses a short password before anything is written
    user = session.scalar(
        select(PartnerUser).where(
            PartnerUser.email == invitation.email, PartnerUser.partner_id == invitation.partner_id
        )
    )
    if user is None:
        raise InvitationRevoked("The login for this link was removed. Contact the program team.", field="token")
    # Compare-and-set: of two tabs submitting the same link, one sets the password, the other is told.
    used = session.execute(
        update(Invitation)
        .where(Invitation.id == invitation.id, Invitation.used_at.is_(None), Invitation.revoked_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session="fetch")
    )
    if int(used.rowcount) != 1:  # type: ignore[attr-defined]
        raise InvitationUsed("This link was just used to set a password. Log in at /portal/login.", field="token")
    session.expire(invitation)
    user.password_hash = password_hash
    session.flush()
    partner = session.get(Partner, invitation.partner_id)
    assert partner is not None
    me = Actor(ActorType.PARTNER, user.id, frozenset({"read"}), partner.program_id, partner.id, user.email)
    audit.record(
        session,
        actor=me,
        action="invitation.accept",
        object_type="invitation",
        object_id=invitation.id,
        program_id=invitation.program_id,
        now=now,
        after={"partner_user_id": user.id, "kind": invitation.kind, "has_password": True},
    )
    record_activity(
        session,
        partner_id=partner.id,
        kind="invitation.accepted",
        actor=me,
        now=now,
        text=f"{user.email} set a portal password with the {invitation.kind} link",
        ref_type="invitation",
        ref_id=invitation.id,
    )
    return user


# The link rules live in invitation_rules; callers keep importing them from here.
__all__ = [
    "MAY_LOG_IN",
    "VALID_FOR",
    "InvitationExpired",
    "InvitationKind",
    "InvitationNotFound",
    "InvitationRevoked",
    "InvitationStatus",
    "InvitationUsed",
    "accept_invitation",
    "check_invitation",
    "check_login_email_free",
    "get_invitation",
    "hash_token",
    "invitation_status",
    "invite_partner",
    "issue_invitation",
    "list_invitations",
    "resend_invitation",
    "revoke_invitation",
    "status_filter",
]
