"""Invitations: direct invites, login links that expire, work once and can be revoked, and the email job."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM, Actor
from partnerpay.auth.passwords import verify_password
from partnerpay.auth.service import authenticate_partner_user, create_staff_user, staff_actor
from partnerpay.db.models import Base
from partnerpay.integrations.smtp import Email
from partnerpay.jobs.models import JobStatus, OutboxJob
from partnerpay.jobs.registry import Registry
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Conflict, Forbidden, NotFound, ValidationError
from partnerpay.messaging.email import EMAIL_SEND, email_handler
from partnerpay.partners.invitations import (
    InvitationExpired,
    InvitationNotFound,
    InvitationRevoked,
    InvitationStatus,
    InvitationUsed,
    accept_invitation,
    invitation_status,
    invite_partner,
    list_invitations,
    resend_invitation,
    revoke_invitation,
)
from partnerpay.partners.models import Invitation, Partner, PartnerStatus, PartnerUser, Prospect
from partnerpay.partners.prospects import create_prospect
from partnerpay.programs.models import Program
from tests import factories

PASSWORD = "correct horse battery"


def manager(session: Session, now: datetime, role: str = "manager") -> Actor:
    user = create_staff_user(
        session, actor=SYSTEM, email=f"{role}@example.com", role=role, password="long enough pw", now=now
    )
    return staff_actor(user)


def invite(session: Session, prog: Program, now: datetime, **kw: Any) -> tuple[Partner, Invitation, str]:
    actor = kw.pop("actor", None) or manager(session, now)
    args = {"name": "Ada Blog", "email": "ada@example.com", **kw}
    return invite_partner(session, actor=actor, program_id=prog.id, now=now, **args)


class RecordingMailer:
    def __init__(self) -> None:
        self.sent: list[Email] = []

    def send(self, email: Email) -> None:
        self.sent.append(email)


class TestInvitePartner:
    def test_an_invited_partner_is_active_with_a_login_that_has_no_password_yet(
        self, session: Session, clock: FixedClock
    ) -> None:
        prog = factories.program(session, clock.now())

        partner, invitation, token = invite(session, prog, clock.now())

        assert partner.status == PartnerStatus.ACTIVE.value and partner.source == "invitation"
        user = session.scalar(select(PartnerUser).where(PartnerUser.partner_id == partner.id))
        assert user is not None and user.password_hash is None and user.role == "owner"
        assert invitation.kind == "invitation" and invitation.expires_at == clock.now() + timedelta(days=7)
        assert len(token) >= 43

    def test_only_the_hash_of_the_token_is_stored(self, session: Session, clock: FixedClock) -> None:
        _, invitation, token = invite(session, factories.program(session, clock.now()), clock.now())

        assert invitation.token_hash == hashlib.sha256(token.encode()).hexdigest()
        stored = session.execute(text("SELECT * FROM invitations")).all()
        assert token not in repr(stored)

    def test_the_invitation_email_carries_the_link_to_set_a_password(self, session: Session, clock: FixedClock) -> None:
        _, _, token = invite(session, factories.program(session, clock.now(), name="Acme"), clock.now())

        payload = session.scalar(select(OutboxJob.payload).where(OutboxJob.kind == EMAIL_SEND))
        assert payload is not None
        assert payload["to"] == "ada@example.com"
        assert payload["subject"] == "You are invited to the Acme partner program"
        assert f"{{base_url}}/invite/{token}" in payload["text"]

    def test_a_program_name_with_a_line_break_cannot_break_the_subject_line(
        self, session: Session, clock: FixedClock
    ) -> None:
        prog = factories.program(session, clock.now(), name="Acme\nBcc: victim@example.com")

        invite(session, prog, clock.now())

        payload = session.scalar(select(OutboxJob.payload).where(OutboxJob.kind == EMAIL_SEND))
        assert (
            payload is not None
            and payload["subject"] == "You are invited to the Acme Bcc: victim@example.com partner program"
        )

    def test_the_inviting_staff_member_owns_the_partner(self, session: Session, clock: FixedClock) -> None:
        actor = manager(session, clock.now())

        partner, _, _ = invite(session, factories.program(session, clock.now()), clock.now(), actor=actor)

        assert partner.owner_id == actor.id

    def test_inviting_a_prospect_moves_it_to_invited(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        prospect = create_prospect(
            session, actor=SYSTEM, program_id=prog.id, now=clock.now(), company="Ada Media", email="ada@example.com"
        )

        partner, _, _ = invite(session, prog, clock.now(), prospect_id=prospect.id)

        assert prospect.stage == "invited" and prospect.partner_id == partner.id

    def test_a_prospect_of_another_program_is_not_found(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        other = factories.program(session, clock.now(), name="Other")
        prospect = create_prospect(session, actor=SYSTEM, program_id=other.id, now=clock.now(), company="Elsewhere")

        with pytest.raises(NotFound):
            invite(session, prog, clock.now(), prospect_id=prospect.id)
        assert session.get(Prospect, prospect.id).stage == "prospect"  # type: ignore[union-attr]

    def test_an_email_already_in_the_program_is_refused(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        factories.partner(session, prog, clock.now(), email="Ada@Example.com")

        with pytest.raises(Conflict, match="already exists in this program") as caught:
            invite(session, prog, clock.now())

        assert caught.value.field == "email"

    def test_an_invalid_email_is_a_field_error(self, session: Session, clock: FixedClock) -> None:
        with pytest.raises(ValidationError) as caught:
            invite(session, factories.program(session, clock.now()), clock.now(), email="ada at example")

        assert caught.value.field == "email"

    def test_a_viewer_cannot_invite(self, session: Session, clock: FixedClock) -> None:
        viewer = manager(session, clock.now(), role="viewer")

        with pytest.raises(Forbidden):
            invite(session, factories.program(session, clock.now()), clock.now(), actor=viewer)


class TestAcceptInvitation:
    def test_the_link_sets_an_argon2_password_the_partner_can_log_in_with(
        self, session: Session, clock: FixedClock
    ) -> None:
        _, _, token = invite(session, factories.program(session, clock.now()), clock.now())

        user = accept_invitation(session, token=token, password=PASSWORD, now=clock.now())

        assert user.password_hash is not None and user.password_hash.startswith("$argon2id$")
        assert verify_password(user.password_hash, PASSWORD)
        assert authenticate_partner_user(session, "ada@example.com", PASSWORD) is user

    def test_a_link_works_once(self, session: Session, clock: FixedClock) -> None:
        _, _, token = invite(session, factories.program(session, clock.now()), clock.now())
        accept_invitation(session, token=token, password=PASSWORD, now=clock.now())

        with pytest.raises(InvitationUsed, match="already used"):
            accept_invitation(session, token=token, password="another long password", now=clock.now())

    def test_an_expired_link_is_refused_with_its_date(self, session: Session, clock: FixedClock) -> None:
        _, _, token = invite(session, factories.program(session, clock.now()), clock.now())

        with pytest.raises(InvitationExpired, match="expired on 22 Jan 2026"):
            accept_invitation(session, token=token, password=PASSWORD, now=clock.now() + timedelta(days=7))

    def test_a_revoked_link_is_refused(self, session: Session, clock: FixedClock) -> None:
        actor = manager(session, clock.now())
        _, invitation, token = invite(session, factories.program(session, clock.now()), clock.now(), actor=actor)
        revoke_invitation(session, actor=actor, invitation_id=invitation.id, now=clock.now())

        with pytest.raises(InvitationRevoked, match="replaced by a newer one or withdrawn"):
            accept_invitation(session, token=token, password=PASSWORD, now=clock.now())

    def test_an_unknown_token_is_not_found(self, session: Session) -> None:
        with pytest.raises(InvitationNotFound, match="not a valid invitation"):
            accept_invitation(session, token="made-up-token", password=PASSWORD, now=datetime.now().astimezone())

    def test_a_short_password_is_refused_and_the_link_still_works(self, session: Session, clock: FixedClock) -> None:
        _, invitation, token = invite(session, factories.program(session, clock.now()), clock.now())

        with pytest.raises(ValidationError) as caught:
            accept_invitation(session, token=token, password="short", now=clock.now())

        assert caught.value.field == "password"
        assert invitation_status(invitation, clock.now()) is InvitationStatus.VALID

    def test_a_terminated_partners_link_no_longer_works(self, session: Session, clock: FixedClock) -> None:
        partner, _, token = invite(session, factories.program(session, clock.now()), clock.now())
        partner.status = PartnerStatus.TERMINATED.value

        with pytest.raises(InvitationRevoked, match="not active"):
            accept_invitation(session, token=token, password=PASSWORD, now=clock.now())


class TestResendInvitation:
    def test_a_resent_link_replaces_the_old_one(self, session: Session, clock: FixedClock) -> None:
        actor = manager(session, clock.now())
        _, old, old_token = invite(session, factories.program(session, clock.now()), clock.now(), actor=actor)

        new, token = resend_invitation(session, actor=actor, invitation_id=old.id, now=clock.now())

        assert invitation_status(old, clock.now()) is InvitationStatus.REVOKED and new.kind == old.kind
        with pytest.raises(InvitationRevoked):
            accept_invitation(session, token=old_token, password=PASSWORD, now=clock.now())
        assert accept_invitation(session, token=token, password=PASSWORD, now=clock.now()).password_hash

    def test_an_expired_link_can_be_resent(self, session: Session, clock: FixedClock) -> None:
        actor = manager(session, clock.now())
        _, old, _ = invite(session, factories.program(session, clock.now()), clock.now(), actor=actor)
        later = clock.now() + timedelta(days=10)

        new, _ = resend_invitation(session, actor=actor, invitation_id=old.id, now=later)

        assert invitation_status(new, later) is InvitationStatus.VALID

    def test_a_used_link_is_not_resent(self, session: Session, clock: FixedClock) -> None:
        actor = manager(session, clock.now())
        _, old, token = invite(session, factories.program(session, clock.now()), clock.now(), actor=actor)
        accept_invitation(session, token=token, password=PASSWORD, now=clock.now())

        with pytest.raises(InvitationUsed, match="can log in"):
            resend_invitation(session, actor=actor, invitation_id=old.id, now=clock.now())


class TestRevokeInvitation:
    def test_revoking_twice_changes_nothing_more(self, session: Session, clock: FixedClock) -> None:
        actor = manager(session, clock.now())
        _, invitation, _ = invite(session, factories.program(session, clock.now()), clock.now(), actor=actor)
        revoke_invitation(session, actor=actor, invitation_id=invitation.id, now=clock.now())
        first = invitation.revoked_at

        revoke_invitation(session, actor=actor, invitation_id=invitation.id, now=clock.now() + timedelta(hours=1))

        assert invitation.revoked_at == first


class TestListInvitations:
    def test_the_status_filter_tells_valid_expired_used_and_revoked_apart(
        self, session: Session, clock: FixedClock
    ) -> None:
        actor = manager(session, clock.now())
        prog = factories.program(session, clock.now())
        _, valid, _ = invite(session, prog, clock.now(), actor=actor)
        _, used, token = invite(session, prog, clock.now(), actor=actor, email="used@example.com", name="Used")
        accept_invitation(session, token=token, password=PASSWORD, now=clock.now())
        _, revoked, _ = invite(session, prog, clock.now(), actor=actor, email="rev@example.com", name="Revoked")
        revoke_invitation(session, actor=actor, invitation_id=revoked.id, now=clock.now())
        _, expired, _ = invite(session, prog, clock.now() - timedelta(days=8), actor=actor, email="x@example.com")

        found = {
            status: [i.id for i in list_invitations(session, actor, now=clock.now(), status=status).data]
            for status in InvitationStatus
        }

        assert found == {
            InvitationStatus.VALID: [valid.id],
            InvitationStatus.USED: [used.id],
            InvitationStatus.REVOKED: [revoked.id],
            InvitationStatus.EXPIRED: [expired.id],
        }

    def test_newest_first_pages_backwards_in_time(self, session: Session, clock: FixedClock) -> None:
        actor = manager(session, clock.now())
        prog = factories.program(session, clock.now())
        ids = [invite(session, prog, clock.now(), actor=actor, email=f"p{i}@example.com")[1].id for i in range(3)]

        first = list_invitations(session, actor, now=clock.now(), limit=2, newest_first=True)
        second = list_invitations(session, actor, now=clock.now(), limit=2, newest_first=True, cursor=first.next_cursor)

        assert [i.id for i in first.data + second.data] == ids[::-1] and second.next_cursor is None


class TestEmailJob:
    def test_the_worker_sends_the_link_absolute_and_masks_the_token_afterwards(
        self, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        with session_factory() as s:
            _, _, token = invite(s, factories.program(s, clock.now()), clock.now())
            s.commit()
        mailer = RecordingMailer()
        registry = Registry()
        registry.add(EMAIL_SEND, email_handler(mailer, base_url="https://partners.example.com/"))

        Worker(session_factory, registry, clock=clock).run_pending()

        [email] = mailer.sent
        assert f"https://partners.example.com/invite/{token}" in email.text
        with session_factory() as s:
            job = s.scalar(select(OutboxJob).where(OutboxJob.kind == EMAIL_SEND))
            assert job is not None and job.status == JobStatus.DONE.value
            assert token not in job.payload["text"] and "/invite/***" in job.payload["text"]

    def test_after_sending_neither_the_token_nor_the_password_is_anywhere_in_the_database(
        self, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        with session_factory() as s:
            _, _, token = invite(s, factories.program(s, clock.now()), clock.now())
            s.commit()
        registry = Registry()
        registry.add(EMAIL_SEND, email_handler(RecordingMailer(), base_url="https://partners.example.com"))
        Worker(session_factory, registry, clock=clock).run_pending()
        with session_factory() as s:
            accept_invitation(s, token=token, password=PASSWORD, now=clock.now())
            s.commit()

        with session_factory() as s:
            everything = repr([s.execute(t.select()).all() for t in Base.metadata.sorted_tables])
        assert token not in everything and PASSWORD not in everything
