"""Attribution on a real database: each rule, the cookie window's edges, lifetime expiry, and the why."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pydantic
import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import SYSTEM
from partnerpay.deals.models import Deal, Lead
from partnerpay.events.models import Customer, Event
from partnerpay.events.schemas import EventIn, EventType
from partnerpay.events.service import Recorded, record_event
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Conflict, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.tracking.attribution_models import Attribution, FraudFlag
from partnerpay.tracking.coupons import create_coupon, deactivate_coupon
from partnerpay.tracking.models import Click
from tests import factories

DAY = timedelta(days=1)


def add_click(session: Session, prog: Program, partner: Partner | None, at: datetime, code: str = "") -> Click:
    click = Click(
        id=new_id("clk"),
        program_id=prog.id,
        partner_id=partner.id if partner else None,
        code=code or (f"{partner.referral_code}.spring" if partner else "nobody"),
        at=at,
        ip_hash="ip-1",
        destination="https://shop.example.com/",
    )
    session.add(click)
    session.flush()
    return click


def send(session: Session, prog: Program, now: datetime, **kw: Any) -> Recorded:
    fields: dict[str, Any] = {
        "program_id": prog.id,
        "type": EventType.SIGNUP,
        "external_id": new_id("evt"),
        "occurred_at": now,
        "customer_external_id": "cust-1",
        **kw,
    }
    if fields["type"] is EventType.INVOICE_PAID:
        fields.setdefault("amount", 10_000)
        fields.setdefault("currency", prog.currency)
    return record_event(session, actor=SYSTEM, data=EventIn(**fields), now=now)


def decision(session: Session, recorded: Recorded) -> Attribution | None:
    event = recorded.event
    return session.get(Attribution, event.attribution_id) if event.attribution_id else None


@pytest.fixture
def world(session: Session, clock: FixedClock) -> tuple[Program, Partner, Partner]:
    prog = factories.program(session, clock.now())
    acme = factories.partner(session, prog, clock.now(), "Acme", email="ana@acme-media.com")
    beta = factories.partner(session, prog, clock.now(), "Beta", email="bo@beta-blog.com")
    return prog, acme, beta


class TestClickRules:
    def test_last_click_is_the_default_and_its_reason_says_when_and_which_link(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, _, beta = world
        now = clock.now()
        click = add_click(session, prog, beta, now - 3 * DAY)
        r = send(session, prog, now, click_id=click.id)
        att = decision(session, r)
        assert att is not None and att.partner_id == beta.id and att.rule == "last_click"
        assert att.reason == f"last click 3 days before signup on link {click.code} (cookie window 30 days)"
        assert att.click_id == click.id and r.event.partner_id == beta.id

    @pytest.mark.parametrize(("model", "winner"), [("last_click", "Beta"), ("first_click", "Acme")])
    def test_the_program_model_chooses_among_the_customers_valid_clicks(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner], model: str, winner: str
    ) -> None:
        prog, acme, beta = world
        prog.attribution_model = model
        now = clock.now()
        # The first event names acme's click while it is still in the redirect's write buffer ...
        buffered = new_id("clk")
        assert send(session, prog, now - 2 * DAY, click_id=buffered).event.partner_id is None
        session.add(Click(id=buffered, program_id=prog.id, partner_id=acme.id, code="acme.a", at=now - 10 * DAY,
                          destination="https://x.example.com/"))  # fmt: skip
        # ... so at the next event the customer has two valid clicks, and the model picks one.
        later = add_click(session, prog, beta, now - DAY)
        r = send(session, prog, now, click_id=later.id)
        att = decision(session, r)
        expected = acme if winner == "Acme" else beta
        assert att is not None and att.partner_id == expected.id and att.rule == model

    def test_click_counts_at_the_exact_instant_its_cookie_expires_and_not_a_microsecond_later(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, acme, _ = world
        clicked = clock.now()
        click = add_click(session, prog, acme, clicked)
        edge = clicked + timedelta(days=prog.cookie_days)
        inside = send(session, prog, edge, click_id=click.id, customer_external_id="on-edge")
        outside = send(
            session, prog, edge + timedelta(microseconds=1), click_id=click.id, customer_external_id="past-edge"
        )
        assert inside.event.partner_id == acme.id
        assert outside.event.partner_id is None
        assert "outside the 30-day cookie window" in (outside.event.unattributed_reason or "")

    def test_an_event_before_its_click_is_not_attributed_to_it(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, acme, _ = world
        click = add_click(session, prog, acme, clock.now())
        r = send(session, prog, clock.now() - timedelta(seconds=1), click_id=click.id)
        assert r.event.partner_id is None


class TestUnknownClicks:
    def test_unknown_click_id_records_the_event_unattributed_with_the_reason(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, _, _ = world
        r = send(session, prog, clock.now(), click_id="clk_00000000000000000000000000")
        assert r.created and r.event.partner_id is None
        assert "not known (yet)" in (r.event.unattributed_reason or "")

    def test_a_click_written_later_counts_at_the_customers_next_event(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, acme, _ = world
        now = clock.now()
        click_id = new_id("clk")
        send(session, prog, now, click_id=click_id)
        late = Click(id=click_id, program_id=prog.id, partner_id=acme.id, code="acme.x", at=now - DAY,
                     destination="https://x.example.com/")  # fmt: skip
        session.add(late)
        session.flush()
        r = send(session, prog, now + DAY, type=EventType.INVOICE_PAID)
        assert r.event.partner_id == acme.id and r.commissions

    def test_malformed_click_id_names_the_field(self) -> None:
        with pytest.raises(pydantic.ValidationError) as caught:
            EventIn(program_id="prg_x", type=EventType.SIGNUP, external_id="e", occurred_at=datetime.now().astimezone(),
                    customer_external_id="c", click_id="lnk_123")  # fmt: skip
        assert "click_id" in str(caught.value)


class TestCouponAgainstLink:
    @pytest.mark.parametrize("overrides", [True, False])
    def test_coupon_beats_the_link_only_when_the_program_says_so(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner], overrides: bool
    ) -> None:
        prog, acme, beta = world
        prog.coupon_overrides_link = overrides
        now = clock.now()
        create_coupon(session, actor=SYSTEM, program_id=prog.id, partner_id=beta.id, code="Beta10", now=now)
        click = add_click(session, prog, acme, now - DAY)
        r = send(session, prog, now, click_id=click.id, coupon="beta10", type=EventType.INVOICE_PAID)
        att = decision(session, r)
        assert att is not None
        if overrides:
            assert (att.partner_id, att.rule) == (beta.id, "coupon") and att.coupon_id is not None
            assert "overrides link" in att.reason
        else:
            assert (att.partner_id, att.rule) == (acme.id, "last_click")
            assert "link wins over coupon Beta10" in att.reason
        assert att.reason in r.commissions[0].explanation

    def test_a_deactivated_coupon_attributes_nobody_and_says_so(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, _, beta = world
        now = clock.now()
        coupon = create_coupon(session, actor=SYSTEM, program_id=prog.id, partner_id=beta.id, code="OLD", now=now)
        deactivate_coupon(session, actor=SYSTEM, coupon_id=coupon.id, now=now)
        r = send(session, prog, now, coupon="old")
        assert r.event.partner_id is None and "coupon OLD is deactivated" in (r.event.unattributed_reason or "")


class TestDealDomain:
    def _lead(self, session: Session, prog: Program, partner: Partner, now: datetime, until: datetime) -> Lead:
        lead = Lead(id=new_id("lead"), program_id=prog.id, partner_id=partner.id, company="Globex",
                    company_key="globex", domain="globex.com", status="accepted", protected_until=until,
                    created_at=now - 10 * DAY, created_by="usr_x", last_update_at=now)  # fmt: skip
        session.add(lead)
        session.flush()
        return lead

    def test_accepted_lead_wins_over_a_click_and_a_coupon_while_protected(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, acme, beta = world
        now = clock.now()
        lead = self._lead(session, prog, acme, now, now + 5 * DAY)
        create_coupon(session, actor=SYSTEM, program_id=prog.id, partner_id=beta.id, code="B", now=now)
        click = add_click(session, prog, beta, now - DAY)
        r = send(session, prog, now, click_id=click.id, coupon="B", customer_email="ceo@Globex.com")
        att = decision(session, r)
        assert att is not None and (att.partner_id, att.rule, att.lead_id) == (acme.id, "deal", lead.id)
        assert "globex.com" in att.reason

    def test_lead_does_not_win_after_its_protection_ends(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, acme, beta = world
        now = clock.now()
        self._lead(session, prog, acme, now, now - timedelta(seconds=1))
        click = add_click(session, prog, beta, now - DAY)
        r = send(session, prog, now, click_id=click.id, customer_domain="https://www.globex.com/")
        assert r.event.partner_id == beta.id

    def test_registered_deal_without_lead_is_protected_for_the_programs_lead_protection_days(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, acme, _ = world
        now = clock.now()
        deal = Deal(id=new_id("deal"), program_id=prog.id, partner_id=acme.id, company="Initech", domain="initech.io",
                    stage="registered", created_at=now, updated_at=now, last_update_at=now)  # fmt: skip
        session.add(deal)
        session.flush()
        end = now + timedelta(days=prog.lead_protection_days)
        won = send(session, prog, end, customer_domain="initech.io", customer_external_id="in")
        late = send(session, prog, end + DAY, customer_domain="initech.io", customer_external_id="late")
        att = decision(session, won)
        assert att is not None and att.deal_id == deal.id and att.rule == "deal"
        assert late.event.partner_id is None

    def test_free_mail_is_never_a_deal_domain(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, acme, _ = world
        now = clock.now()
        lead = self._lead(session, prog, acme, now, now + DAY)
        lead.domain = "gmail.com"
        r = send(session, prog, now, customer_email="someone@gmail.com")
        assert r.event.partner_id is None


class TestNamedPartner:
    def test_partner_id_and_referral_code_name_the_partner_when_nothing_else_does(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, acme, beta = world
        by_id = decision(session, send(session, prog, clock.now(), partner_id=acme.id, customer_external_id="a"))
        by_code = decision(
            session, send(session, prog, clock.now(), referral_code=beta.referral_code, customer_external_id="b")
        )
        assert by_id is not None and (by_id.partner_id, by_id.rule) == (acme.id, "partner_id")
        assert by_code is not None and (by_code.partner_id, by_code.rule) == (beta.id, "referral_code")

    def test_a_click_beats_an_explicit_partner(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, acme, beta = world
        click = add_click(session, prog, acme, clock.now() - DAY)
        r = send(session, prog, clock.now(), click_id=click.id, partner_id=beta.id)
        assert r.event.partner_id == acme.id

    def test_a_customer_keeps_its_partner_and_a_later_code_does_not_move_it(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, acme, beta = world
        send(session, prog, clock.now(), partner_id=acme.id)
        r = send(session, prog, clock.now() + DAY, partner_id=beta.id, type=EventType.INVOICE_PAID)
        assert r.event.partner_id == acme.id
        assert len(session.scalars(select(Attribution)).all()) == 1


class TestLifetime:
    def test_attribution_expires_after_attribution_months_then_a_new_decision_is_made(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, acme, beta = world
        prog.attribution_months = 2
        start = clock.now()  # 15 Jan
        first = decision(session, send(session, prog, start, partner_id=acme.id))
        assert first is not None and first.expires_at == start.replace(month=3)
        before_end = send(session, prog, start.replace(month=3) - timedelta(seconds=1), partner_id=beta.id)
        assert before_end.event.partner_id == acme.id
        after_end = send(session, prog, start.replace(month=3), partner_id=beta.id)
        second = decision(session, after_end)
        assert second is not None and second.partner_id == beta.id and second.id != first.id
        customer = session.get(Customer, after_end.event.customer_id)
        assert customer is not None and customer.attribution_id == second.id

    def test_after_expiry_without_new_evidence_the_customer_has_no_partner(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, acme, _ = world
        prog.attribution_months = 1
        send(session, prog, clock.now(), partner_id=acme.id)
        r = send(session, prog, clock.now() + 40 * DAY, type=EventType.INVOICE_PAID)
        assert r.event.partner_id is None and not r.commissions
        assert "expired on 15 Feb 2026" in (r.event.unattributed_reason or "")


class TestSelfReferral:
    @pytest.mark.parametrize(
        ("email", "domain", "flagged"),
        [
            ("ana@acme-media.com", None, True),  # the partner's own address
            ("boss@acme-media.com", None, True),  # the partner's email domain
            (None, "acme.io", True),  # the partner's website
            ("ana.private@gmail.com", None, False),
            ("x@globex.com", None, False),
        ],
    )
    def test_customer_who_is_the_partner_is_flagged(
        self,
        session: Session,
        clock: FixedClock,
        world: tuple[Program, Partner, Partner],
        email: str | None,
        domain: str | None,
        flagged: bool,
    ) -> None:
        prog, acme, _ = world
        acme.website = "https://www.acme.io/about"
        r = send(session, prog, clock.now(), partner_id=acme.id, customer_email=email, customer_domain=domain)
        att = decision(session, r)
        assert att is not None and att.self_referral is flagged
        flags = session.scalars(select(FraudFlag).where(FraudFlag.event_id == r.event.id)).all()
        assert [f.kind for f in flags] == (["self_referral"] if flagged else [])


class TestDedupe:
    def test_an_event_sent_again_without_the_new_fields_still_matches(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, acme, _ = world
        first = send(session, prog, clock.now(), external_id="same", partner_id=acme.id)
        again = send(session, prog, clock.now(), external_id="same", partner_id=acme.id)
        assert not again.created and again.event.id == first.event.id
        with pytest.raises(Conflict, match="different content"):
            send(session, prog, clock.now(), external_id="same", partner_id=acme.id, customer_domain="acme.io")

    def test_unknown_coupon_is_refused(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner, Partner]
    ) -> None:
        prog, _, _ = world
        with pytest.raises(ValidationError) as caught:
            send(session, prog, clock.now(), coupon="NOPE")
        assert caught.value.field == "coupon"
        assert session.scalar(select(Event.id)) is None
