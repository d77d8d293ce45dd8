"""Several logins per partner: owners invite members, members log in but cannot invite, the last owner stays."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.auth.service import authenticate_partner_user, create_staff_user, staff_actor
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Conflict, Forbidden, NotFound, ValidationError
from partnerpay.partners.invitations import InvitationStatus, accept_invitation, invitation_status
from partnerpay.partners.members import invite_member, remove_member
from partnerpay.partners.models import Invitation, Partner, PartnerActivity, PartnerUser
from partnerpay.partners.service import add_partner_user
from tests import factories

PASSWORD = "correct horse battery"


def portal_actor(user: PartnerUser, partner: Partner) -> Actor:
    return Actor(ActorType.PARTNER, user.id, frozenset({"read"}), partner.program_id, partner.id, user.email)


def setup(session: Session, now: datetime) -> tuple[Partner, Partner, Actor, Actor]:
    """Acme and Beta with one owner login each; returns both partners and both owners' actors."""
    prog = factories.program(session, now)
    acme = factories.partner(session, prog, now, name="Acme", email="acme@example.com")
    beta = factories.partner(session, prog, now, name="Beta", email="beta@example.com")
    acme_owner = add_partner_user(
        session, actor=SYSTEM, partner_id=acme.id, email="boss@acme.example", password=PASSWORD, now=now
    )
    beta_owner = add_partner_user(
        session, actor=SYSTEM, partner_id=beta.id, email="boss@beta.example", password=PASSWORD, now=now
    )
    return acme, beta, portal_actor(acme_owner, acme), portal_actor(beta_owner, beta)


def count(session: Session, model: type[object]) -> int:
    return session.scalar(select(func.count()).select_from(model)) or 0


class TestInviteMember:
    def test_an_owner_invites_a_member_who_sets_a_password_and_logs_in(
        self, session: Session, clock: FixedClock
    ) -> None:
        acme, _, owner, _ = setup(session, clock.now())

        user, invitation, token = invite_member(
            session, actor=owner, partner_id=acme.id, email="Colleague@Acme.example", now=clock.now()
        )

        assert user.role == "member" and user.partner_id == acme.id and user.password_hash is None
        assert user.email == invitation.email == "colleague@acme.example"
        jobs = session.scalars(select(OutboxJob)).all()
        assert any(j.payload.get("to") == "colleague@acme.example" for j in jobs)
        assert session.scalar(select(AuditEntry).where(AuditEntry.action == "partner_user.invite_member"))
        assert session.scalar(select(PartnerActivity).where(PartnerActivity.kind == "member.invited"))

        accepted = accept_invitation(session, token=token, password=PASSWORD, now=clock.now())

        assert accepted.id == user.id
        assert authenticate_partner_user(session, "colleague@acme.example", PASSWORD) is user
        assert authenticate_partner_user(session, "boss@acme.example", PASSWORD) is not None

    def test_a_member_invite_leaves_the_partners_own_open_link_valid(self, session: Session, clock: FixedClock) -> None:
        acme, _, owner, _ = setup(session, clock.now())
        _, first, _ = invite_member(session, actor=owner, partner_id=acme.id, email="a@acme.example", now=clock.now())
        _, second, _ = invite_member(session, actor=owner, partner_id=acme.id, email="b@acme.example", now=clock.now())
        assert invitation_status(first, clock.now()) is InvitationStatus.VALID
        assert invitation_status(second, clock.now()) is InvitationStatus.VALID

    def test_a_member_may_not_invite(self, session: Session, clock: FixedClock) -> None:
        acme, _, owner, _ = setup(session, clock.now())
        user, _, token = invite_member(
            session, actor=owner, partner_id=acme.id, email="m@acme.example", now=clock.now()
        )
        accept_invitation(session, token=token, password=PASSWORD, now=clock.now())

        with pytest.raises(Forbidden, match="owner"):
            invite_member(
                session, actor=portal_actor(user, acme), partner_id=acme.id, email="x@acme.example", now=clock.now()
            )

    def test_another_partners_owner_gets_a_404(self, session: Session, clock: FixedClock) -> None:
        acme, _, _, beta_owner = setup(session, clock.now())
        before = count(session, PartnerUser)

        with pytest.raises(NotFound):
            invite_member(session, actor=beta_owner, partner_id=acme.id, email="x@acme.example", now=clock.now())
        assert count(session, PartnerUser) == before

    @pytest.mark.parametrize("email", ["boss@beta.example", "BOSS@acme.example"])
    def test_an_email_that_is_already_a_login_is_a_field_error_and_nothing_is_written(
        self, session: Session, clock: FixedClock, email: str
    ) -> None:
        acme, _, owner, _ = setup(session, clock.now())
        session.flush()
        counts = [count(session, m) for m in (PartnerUser, Invitation, OutboxJob, AuditEntry)]

        with pytest.raises(Conflict) as caught:
            invite_member(session, actor=owner, partner_id=acme.id, email=email, now=clock.now())

        assert caught.value.field == "email" and "login" in caught.value.message
        assert [count(session, m) for m in (PartnerUser, Invitation, OutboxJob, AuditEntry)] == counts

    def test_an_invalid_email_is_a_field_error(self, session: Session, clock: FixedClock) -> None:
        acme, _, owner, _ = setup(session, clock.now())
        with pytest.raises(ValidationError) as caught:
            invite_member(session, actor=owner, partner_id=acme.id, email="not an email", now=clock.now())
        assert caught.value.field == "email"

    def test_staff_with_write_may_invite_a_viewer_may_not(self, session: Session, clock: FixedClock) -> None:
        acme, _, _, _ = setup(session, clock.now())
        now = clock.now()
        manager = staff_actor(
            create_staff_user(session, actor=SYSTEM, email="m@example.com", role="manager", password=PASSWORD, now=now)
        )
        viewer = staff_actor(
            create_staff_user(session, actor=SYSTEM, email="v@example.com", role="viewer", password=PASSWORD, now=now)
        )

        user, _, _ = invite_member(session, actor=manager, partner_id=acme.id, email="s@acme.example", now=now)

        assert user.role == "member"
        with pytest.raises(Forbidden):
            invite_member(session, actor=viewer, partner_id=acme.id, email="t@acme.example", now=now)


class TestRemoveMember:
    def test_an_owner_removes_a_member_whose_login_and_open_link_stop_working(
        self, session: Session, clock: FixedClock
    ) -> None:
        acme, _, owner, _ = setup(session, clock.now())
        user, invitation, _ = invite_member(
            session, actor=owner, partner_id=acme.id, email="m@acme.example", now=clock.now()
        )
        user_id = user.id

        remove_member(session, actor=owner, partner_id=acme.id, user_id=user_id, now=clock.now())

        assert session.get(PartnerUser, user_id) is None
        assert invitation_status(invitation, clock.now()) is InvitationStatus.REVOKED
        entry = session.scalar(select(AuditEntry).where(AuditEntry.action == "partner_user.remove"))
        assert entry is not None and entry.object_id == user_id and entry.before is not None
        assert entry.before["email"] == "m@acme.example"
        assert session.scalar(select(PartnerActivity).where(PartnerActivity.kind == "member.removed"))

    def test_the_last_owner_cannot_be_removed(self, session: Session, clock: FixedClock) -> None:
        acme, _, owner, _ = setup(session, clock.now())
        now = clock.now()
        manager = staff_actor(
            create_staff_user(session, actor=SYSTEM, email="m@example.com", role="manager", password=PASSWORD, now=now)
        )

        for actor in (owner, manager):
            with pytest.raises(Conflict, match="only owner"):
                remove_member(session, actor=actor, partner_id=acme.id, user_id=owner.id, now=now)
        assert session.get(PartnerUser, owner.id) is not None

    def test_a_member_may_not_remove_and_another_partner_gets_a_404(self, session: Session, clock: FixedClock) -> None:
        acme, _, owner, beta_owner = setup(session, clock.now())
        now = clock.now()
        one, _, token = invite_member(session, actor=owner, partner_id=acme.id, email="a@acme.example", now=now)
        two, _, _ = invite_member(session, actor=owner, partner_id=acme.id, email="b@acme.example", now=now)
        accept_invitation(session, token=token, password=PASSWORD, now=now)

        with pytest.raises(Forbidden):
            remove_member(session, actor=portal_actor(one, acme), partner_id=acme.id, user_id=two.id, now=now)
        with pytest.raises(NotFound):
            remove_member(session, actor=beta_owner, partner_id=acme.id, user_id=two.id, now=now)
        assert session.get(PartnerUser, two.id) is not None
