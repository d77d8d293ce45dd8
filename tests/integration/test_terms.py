"""Program terms: versions, acceptance (time, address, user, version), and no earning without acceptance."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.auth.service import create_staff_user, staff_actor
from partnerpay.events.models import Event
from partnerpay.jobs.handlers import NOTIFY_PARTNER
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Conflict, Forbidden, NotFound, ValidationError
from partnerpay.partners.lifecycle import change_status
from partnerpay.partners.models import Partner, PartnerActivity, PartnerStatus
from partnerpay.programs.models import Program, TermsAcceptance
from partnerpay.programs.terms import accept_terms, needs_acceptance, publish_terms, to_html
from tests import factories

BODY = "# Partner agreement\n\nYou earn **20 %** of what your customers pay."


def portal_actor(partner: Partner, user_id: str = "pu_test") -> Actor:
    return Actor(ActorType.PARTNER, user_id, frozenset({"read"}), partner.program_id, partner.id, "portal@example.com")


def publish(session: Session, prog: Program, now: datetime, title: str = "Partner agreement") -> int:
    return publish_terms(session, actor=SYSTEM, program_id=prog.id, title=title, body_markdown=BODY, now=now).version


def accept(session: Session, partner: Partner, version: int, now: datetime) -> TermsAcceptance:
    return accept_terms(
        session, actor=portal_actor(partner), partner_id=partner.id, version=version, ip="198.51.100.7", now=now
    )


class TestPublishTerms:
    def test_each_version_is_the_last_plus_one(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())

        versions = [publish(session, prog, clock.now()) for _ in range(3)]

        assert versions == [1, 2, 3]

    def test_versions_count_per_program(self, session: Session, clock: FixedClock) -> None:
        publish(session, factories.program(session, clock.now()), clock.now())

        assert publish(session, factories.program(session, clock.now(), name="Other"), clock.now()) == 1

    def test_every_active_or_suspended_partner_is_told_in_the_portal(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        active = factories.partner(session, prog, clock.now(), name="Active")
        suspended = factories.partner(session, prog, clock.now(), name="Suspended")
        change_status(
            session, actor=SYSTEM, partner_id=suspended.id, to=PartnerStatus.SUSPENDED, now=clock.now(), reason="x"
        )
        ended = factories.partner(session, prog, clock.now(), name="Ended")
        change_status(
            session, actor=SYSTEM, partner_id=ended.id, to=PartnerStatus.TERMINATED, now=clock.now(), reason="x"
        )

        publish(session, prog, clock.now())

        told = {
            p["partner_id"] for p in session.scalars(select(OutboxJob.payload).where(OutboxJob.kind == NOTIFY_PARTNER))
        }
        assert told == {active.id, suspended.id}

    def test_a_manager_may_not_publish_terms(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        user = create_staff_user(
            session, actor=SYSTEM, email="m@example.com", role="manager", password="long enough pw", now=clock.now()
        )

        with pytest.raises(Forbidden, match="owner role"):
            publish_terms(
                session, actor=staff_actor(user), program_id=prog.id, title="T", body_markdown=BODY, now=clock.now()
            )

    def test_an_empty_text_is_a_field_error(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())

        with pytest.raises(ValidationError) as caught:
            publish_terms(session, actor=SYSTEM, program_id=prog.id, title="T", body_markdown="  ", now=clock.now())

        assert caught.value.field == "body_markdown"


class TestAcceptTerms:
    def test_acceptance_records_time_address_user_and_version(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        partner = factories.partner(session, prog, clock.now())
        publish(session, prog, clock.now())

        acceptance = accept(session, partner, 1, clock.now())

        assert (acceptance.version, acceptance.ip, acceptance.partner_user_id) == (1, "198.51.100.7", "pu_test")
        assert acceptance.accepted_at == clock.now()
        texts = session.scalars(select(PartnerActivity.text).where(PartnerActivity.kind == "terms.accepted")).all()
        assert texts == ["Accepted terms version 1 (portal@example.com, from 198.51.100.7)"]

    def test_an_older_version_cannot_be_accepted(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        partner = factories.partner(session, prog, clock.now())
        publish(session, prog, clock.now())
        publish(session, prog, clock.now())

        with pytest.raises(Conflict, match="accept version 2"):
            accept(session, partner, 1, clock.now())

    def test_accepting_twice_records_one_acceptance(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        partner = factories.partner(session, prog, clock.now())
        publish(session, prog, clock.now())

        first = accept(session, partner, 1, clock.now())
        again = accept(session, partner, 1, clock.now() + timedelta(minutes=1))

        assert again.id == first.id
        assert len(session.scalars(select(TermsAcceptance)).all()) == 1

    def test_a_partner_cannot_accept_for_another_partner(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        mine = factories.partner(session, prog, clock.now(), name="Mine")
        theirs = factories.partner(session, prog, clock.now(), name="Theirs")
        publish(session, prog, clock.now())

        with pytest.raises(NotFound):
            accept_terms(session, actor=portal_actor(mine), partner_id=theirs.id, version=1, ip=None, now=clock.now())

    def test_a_program_without_terms_has_nothing_to_accept(self, session: Session, clock: FixedClock) -> None:
        partner = factories.partner(session, factories.program(session, clock.now()), clock.now())

        with pytest.raises(ValidationError, match="no terms"):
            accept(session, partner, 1, clock.now())


class TestNeedsAcceptance:
    def test_nothing_is_needed_while_a_program_has_no_terms(self, session: Session, clock: FixedClock) -> None:
        partner = factories.partner(session, factories.program(session, clock.now()), clock.now())

        assert needs_acceptance(session, partner.id) is None

    def test_a_new_version_asks_again_after_an_acceptance(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        partner = factories.partner(session, prog, clock.now())
        publish(session, prog, clock.now())
        assert needs_acceptance(session, partner.id).version == 1  # type: ignore[union-attr]
        accept(session, partner, 1, clock.now())
        assert needs_acceptance(session, partner.id) is None

        publish(session, prog, clock.now())

        assert needs_acceptance(session, partner.id).version == 2  # type: ignore[union-attr]


class TestEarningNeedsTheLatestTerms:
    def test_an_invoice_before_acceptance_makes_no_commission_and_after_acceptance_does(
        self, session: Session, clock: FixedClock
    ) -> None:
        prog = factories.program(session, clock.now())
        partner = factories.partner(session, prog, clock.now())
        publish(session, prog, clock.now())

        before = factories.event(
            session, prog, clock.now(), external_id="inv_1", customer="cus_1", amount=10_000, partner_id=partner.id
        )
        accept(session, partner, 1, clock.now())
        after = factories.event(
            session, prog, clock.now(), external_id="inv_2", customer="cus_1", amount=10_000, partner_id=partner.id
        )

        assert before == [] and [line.amount for line in after] == [2_000]
        assert session.scalar(select(Event.id).where(Event.external_id == "inv_1")) is not None
        missed = session.scalars(select(PartnerActivity.text).where(PartnerActivity.kind == "terms.not_accepted"))
        assert list(missed) == ["No commission on invoice_paid inv_1: terms version 1 not accepted yet"]

    def test_a_new_version_stops_earning_until_it_is_accepted(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        partner = factories.partner(session, prog, clock.now())
        publish(session, prog, clock.now())
        accept(session, partner, 1, clock.now())
        publish(session, prog, clock.now())

        lines = factories.event(
            session, prog, clock.now(), external_id="inv_1", customer="cus_1", amount=10_000, partner_id=partner.id
        )

        assert lines == []

    def test_a_program_without_terms_earns_as_before(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        partner = factories.partner(session, prog, clock.now())

        lines = factories.event(
            session, prog, clock.now(), external_id="inv_1", customer="cus_1", amount=10_000, partner_id=partner.id
        )

        assert [line.amount for line in lines] == [2_000]


class TestToHtml:
    def test_raw_html_is_shown_as_text(self) -> None:
        html = to_html('Hello <script>alert("x")</script> <img src=x onerror=alert(1)>')

        assert "<script" not in html and "<img" not in html and "&lt;script&gt;" in html

    def test_a_javascript_link_is_not_made_a_link(self) -> None:
        assert "href" not in to_html("[click](javascript:alert(1))")

    def test_markdown_headings_and_emphasis_are_rendered(self) -> None:
        assert to_html(BODY) == (
            "<h1>Partner agreement</h1>\n<p>You earn <strong>20 %</strong> of what your customers pay.</p>\n"
        )
