"""Applications: the public form's answers, approval (single, bulk, automatic) and decline with a reason."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM, Actor
from partnerpay.auth.service import api_key_actor, create_api_key, create_staff_user, staff_actor
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationError
from partnerpay.messaging.email import EMAIL_SEND
from partnerpay.partners.applications import (
    approve_applications,
    check_website,
    decline_applications,
    submit_application,
)
from partnerpay.partners.invitations import InvitationKind
from partnerpay.partners.models import Invitation, Partner, PartnerActivity, PartnerStatus, PartnerUser
from partnerpay.programs.models import Program
from partnerpay.programs.service import update_program_settings
from tests import factories

FORM = {"name": "Ada Blog", "email": "ada@example.com", "company": "Ada Media", "website": "ada.example.com"}


def staff(session: Session, now: datetime, role: str = "manager", email: str | None = None) -> Actor:
    user = create_staff_user(
        session, actor=SYSTEM, email=email or f"{role}@example.com", role=role, password="long enough pw", now=now
    )
    return staff_actor(user)


def program(session: Session, now: datetime, **settings: Any) -> Program:
    prog = factories.program(session, now, name=settings.pop("name", "Acme partners"))
    if settings:
        update_program_settings(session, actor=SYSTEM, program_id=prog.id, changes=settings, now=now)
    return prog


def apply(session: Session, prog: Program, now: datetime, **fields: Any) -> Partner:
    return submit_application(session, program_id=prog.id, data={**FORM, **fields}, now=now, ip="203.0.113.9")


def emails(session: Session) -> list[dict[str, Any]]:
    return [dict(p) for p in session.scalars(select(OutboxJob.payload).where(OutboxJob.kind == EMAIL_SEND))]


def count(session: Session, model: Any) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


class TestSubmitApplication:
    def test_an_application_makes_an_applied_partner_with_its_answers(
        self, session: Session, clock: FixedClock
    ) -> None:
        now = clock.now()
        form = {
            "fields": {"audience": "required", "country": "optional"},
            "questions": [{"key": "visitors", "label": "Visitors a month?", "required": True}],
        }
        prog = program(session, now, application_form=form)

        partner = apply(session, prog, now, audience="8,000 developers", country="de", visitors="12k")

        assert partner.status == PartnerStatus.APPLIED.value and partner.source == "application"
        assert partner.country == "DE" and partner.website == "https://ada.example.com"
        assert partner.application == {
            "audience": "8,000 developers",
            "answers": [{"key": "visitors", "label": "Visitors a month?", "answer": "12k"}],
            "ip": "203.0.113.9",
        }

    def test_the_application_is_audited_and_on_the_timeline(self, session: Session, clock: FixedClock) -> None:
        partner = apply(session, program(session, clock.now()), clock.now())

        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == partner.id)).all()
        kinds = session.scalars(select(PartnerActivity.kind).where(PartnerActivity.partner_id == partner.id)).all()
        assert "partner.apply" in actions and kinds == ["application"]

    def test_the_programs_default_owner_owns_the_applicant(self, session: Session, clock: FixedClock) -> None:
        owner = staff(session, clock.now())
        prog = program(session, clock.now(), default_owner_id=owner.id)

        assert apply(session, prog, clock.now()).owner_id == owner.id

    @pytest.mark.parametrize(
        ("field", "value"),
        [
            ("email", "not-an-email"),
            ("country", "XX"),
            ("website", "javascript:alert(1)"),
            ("website", "no spaces.com x"),
        ],
    )
    def test_an_invalid_value_is_a_field_error_and_nothing_is_written(
        self, session: Session, clock: FixedClock, field: str, value: str
    ) -> None:
        prog = program(session, clock.now())
        partners_before = count(session, Partner)

        with pytest.raises(ValidationError) as caught:
            apply(session, prog, clock.now(), **{field: value})

        assert caught.value.field == field and repr(value) in caught.value.message
        assert count(session, Partner) == partners_before

    def test_a_required_custom_question_left_empty_names_its_key(self, session: Session, clock: FixedClock) -> None:
        form = {"questions": [{"key": "niche", "label": "Your niche", "required": True}]}
        prog = program(session, clock.now(), application_form=form)

        with pytest.raises(ValidationError, match="Your niche is required") as caught:
            apply(session, prog, clock.now(), niche="  ")

        assert caught.value.field == "niche"

    def test_a_hidden_field_is_not_stored_even_when_posted(self, session: Session, clock: FixedClock) -> None:
        prog = program(session, clock.now(), application_form={"fields": {"company": "hidden"}})

        assert apply(session, prog, clock.now(), company="Sneaky Ltd").company is None

    def test_the_same_email_twice_in_a_program_is_refused_clearly(self, session: Session, clock: FixedClock) -> None:
        prog = program(session, clock.now())
        apply(session, prog, clock.now())

        with pytest.raises(Conflict, match="has already applied") as caught:
            apply(session, prog, clock.now(), email="ADA@example.com")

        assert caught.value.field == "email"

    def test_the_same_email_may_apply_to_another_program(self, session: Session, clock: FixedClock) -> None:
        apply(session, program(session, clock.now()), clock.now())

        other = apply(session, program(session, clock.now(), name="Beta partners"), clock.now())

        assert other.status == PartnerStatus.APPLIED.value

    def test_a_closed_program_takes_no_application(self, session: Session, clock: FixedClock) -> None:
        prog = program(session, clock.now(), applications_open=False)

        with pytest.raises(Forbidden, match="not taking applications"):
            apply(session, prog, clock.now())

    def test_auto_approve_activates_the_applicant_and_sends_the_welcome_email(
        self, session: Session, clock: FixedClock
    ) -> None:
        prog = program(session, clock.now(), auto_approve=True)

        partner = apply(session, prog, clock.now())

        assert partner.status == PartnerStatus.ACTIVE.value
        assert "auto-approve" in (partner.status_reason or "")
        invitation = session.scalar(select(Invitation).where(Invitation.partner_id == partner.id))
        assert invitation is not None and invitation.kind == InvitationKind.WELCOME.value
        [email] = emails(session)
        assert email["to"] == "ada@example.com" and "{base_url}/invite/" in email["text"]


class TestCheckWebsite:
    def test_an_address_without_scheme_gets_https(self) -> None:
        assert check_website("example.com/about") == "https://example.com/about"

    def test_a_host_without_a_dot_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="website must be an address"):
            check_website("http://localhost")


class TestApproveApplications:
    def test_approval_activates_emails_a_login_link_and_makes_a_login_without_password(
        self, session: Session, clock: FixedClock
    ) -> None:
        manager = staff(session, clock.now())
        partner = apply(session, program(session, clock.now()), clock.now())

        [(approved, invitation, token)] = approve_applications(
            session, actor=manager, partner_ids=[partner.id], now=clock.now()
        )

        assert approved.status == PartnerStatus.ACTIVE.value and invitation.kind == "welcome"
        user = session.scalar(select(PartnerUser).where(PartnerUser.partner_id == partner.id))
        assert user is not None and user.email == "ada@example.com" and user.password_hash is None
        [email] = emails(session)
        assert email["subject"] == "Welcome to the Acme partners partner program"
        assert f"{{base_url}}/invite/{token}" in email["text"] and partner.referral_code in email["text"]

    def test_the_approver_becomes_the_owner_when_nobody_owns_the_partner(
        self, session: Session, clock: FixedClock
    ) -> None:
        manager = staff(session, clock.now())
        partner = apply(session, program(session, clock.now()), clock.now())

        approve_applications(session, actor=manager, partner_ids=[partner.id], now=clock.now())

        assert partner.owner_id == manager.id

    def test_bulk_approval_with_one_partner_not_applied_changes_nothing(
        self, session: Session, clock: FixedClock
    ) -> None:
        manager = staff(session, clock.now())
        prog = program(session, clock.now())
        applicant = apply(session, prog, clock.now())
        active = factories.partner(session, prog, clock.now(), name="Already Active")
        session.commit()

        with pytest.raises(InvalidTransition, match=r"Already Active .* is active, not applied"):
            approve_applications(session, actor=manager, partner_ids=[applicant.id, active.id], now=clock.now())
        session.rollback()

        assert session.get(Partner, applicant.id).status == PartnerStatus.APPLIED.value  # type: ignore[union-attr]
        assert count(session, Invitation) == 0

    def test_bulk_approval_approves_every_listed_applicant(self, session: Session, clock: FixedClock) -> None:
        manager = staff(session, clock.now())
        prog = program(session, clock.now())
        first = apply(session, prog, clock.now())
        second = apply(session, prog, clock.now(), email="bob@example.com", name="Bob")

        done = approve_applications(session, actor=manager, partner_ids=[first.id, second.id], now=clock.now())

        assert [p.status for p, _, _ in done] == ["active", "active"] and len(emails(session)) == 2

    def test_a_viewer_cannot_approve(self, session: Session, clock: FixedClock) -> None:
        viewer = staff(session, clock.now(), role="viewer")
        partner = apply(session, program(session, clock.now()), clock.now())

        with pytest.raises(Forbidden):
            approve_applications(session, actor=viewer, partner_ids=[partner.id], now=clock.now())

    def test_another_programs_applicant_is_not_found(self, session: Session, clock: FixedClock) -> None:
        mine = program(session, clock.now())
        theirs = apply(session, program(session, clock.now(), name="Other"), clock.now())
        _, secret = create_api_key(session, actor=SYSTEM, now=clock.now(), program_id=mine.id, scopes=["read", "write"])
        actor = api_key_actor(session, secret)
        assert actor is not None

        with pytest.raises(NotFound):
            approve_applications(session, actor=actor, partner_ids=[theirs.id], now=clock.now())

    def test_an_email_that_already_has_a_portal_login_elsewhere_is_refused(
        self, session: Session, clock: FixedClock
    ) -> None:
        manager = staff(session, clock.now())
        first = apply(session, program(session, clock.now()), clock.now())
        approve_applications(session, actor=manager, partner_ids=[first.id], now=clock.now())
        second = apply(session, program(session, clock.now(), name="Beta partners"), clock.now())

        with pytest.raises(Conflict, match="already has a partner portal login"):
            approve_applications(session, actor=manager, partner_ids=[second.id], now=clock.now())


class TestDeclineApplications:
    def test_a_decline_needs_a_reason(self, session: Session, clock: FixedClock) -> None:
        manager = staff(session, clock.now())
        partner = apply(session, program(session, clock.now()), clock.now())

        with pytest.raises(ValidationError) as caught:
            decline_applications(session, actor=manager, partner_ids=[partner.id], reason=" ", now=clock.now())

        assert caught.value.field == "reason"

    def test_a_decline_keeps_the_reason_and_emails_the_applicant_without_it(
        self, session: Session, clock: FixedClock
    ) -> None:
        manager = staff(session, clock.now())
        partner = apply(session, program(session, clock.now()), clock.now())

        decline_applications(
            session, actor=manager, partner_ids=[partner.id], reason="coupon site, not our audience", now=clock.now()
        )

        assert partner.status == PartnerStatus.DECLINED.value
        assert partner.status_reason == "coupon site, not our audience"
        [email] = emails(session)
        assert email["to"] == "ada@example.com" and "coupon site" not in email["text"]

    def test_bulk_decline_declines_every_listed_applicant(self, session: Session, clock: FixedClock) -> None:
        manager = staff(session, clock.now())
        prog = program(session, clock.now())
        ids = [apply(session, prog, clock.now(), email=f"p{i}@example.com").id for i in range(3)]

        done = decline_applications(session, actor=manager, partner_ids=ids, reason="spam", now=clock.now())

        assert {p.status for p in done} == {"declined"} and len(done) == 3
