"""Deals: stage moves, won (one deal_won event with partner and amount) and lost; the state machine by property."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.deals.leads import accept_leads, register_lead, reject_leads
from partnerpay.deals.models import Deal, DealActivity, Lead
from partnerpay.deals.service import deal_by_crm_id, link_crm, move_deal
from partnerpay.events.models import Event
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import InvalidTransition, PartnerpayError, ValidationError
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from tests import factories
from tests.integration.test_deals_leads import STAFF, as_partner


@pytest.fixture
def prog(session: Session, clock: FixedClock) -> Program:
    return factories.program(session, clock.now())


@pytest.fixture
def acme(session: Session, prog: Program, clock: FixedClock) -> Partner:
    return factories.partner(session, prog, clock.now(), "Acme Media")


def open_deal(session: Session, partner: Partner, clock: FixedClock, company: str = "Globex") -> Deal:
    item = register_lead(session, actor=as_partner(partner), program_id=partner.program_id, company=company,
                         domain=f"{company.lower()}.com", now=clock.now())  # fmt: skip
    return accept_leads(session, actor=STAFF, lead_ids=[item.id], now=clock.now())[0]


class TestMoveDeal:
    def test_a_stage_move_is_audited_and_on_the_timeline(
        self, session: Session, acme: Partner, clock: FixedClock
    ) -> None:
        deal = open_deal(session, acme, clock)
        move_deal(session, actor=STAFF, deal_id=deal.id, stage="Demo", now=clock.now())
        assert deal.stage == "demo"
        assert session.scalar(select(AuditEntry.after).where(AuditEntry.action == "deal.stage")) == {
            "stage": "demo", "source": "staff"}  # fmt: skip
        texts = session.scalars(select(DealActivity.text).where(DealActivity.deal_id == deal.id)).all()
        assert "Stage registered → demo" in texts

    def test_an_unknown_stage_names_the_field_and_the_choices(
        self, session: Session, acme: Partner, clock: FixedClock
    ) -> None:
        deal = open_deal(session, acme, clock)
        with pytest.raises(ValidationError) as err:
            move_deal(session, actor=STAFF, deal_id=deal.id, stage="signed", now=clock.now())
        assert err.value.field == "stage" and "qualified" in err.value.message

    def test_won_with_an_amount_records_exactly_one_deal_won_event_for_the_partner(
        self, session: Session, acme: Partner, clock: FixedClock
    ) -> None:
        deal = open_deal(session, acme, clock)
        move_deal(session, actor=STAFF, deal_id=deal.id, status="won", amount=1_250_000, now=clock.now())
        events = session.scalars(select(Event).where(Event.external_id == f"deal:{deal.id}")).all()
        assert len(events) == 1
        (event,) = events
        assert (event.type, event.partner_id, event.amount, event.currency) == ("deal_won", acme.id, 1_250_000, "EUR")
        assert (deal.status, deal.event_id, deal.won_at, deal.customer_external_id) == (
            "won", event.id, clock.now(), "globex.com")  # fmt: skip
        with pytest.raises(InvalidTransition):
            move_deal(session, actor=STAFF, deal_id=deal.id, status="won", amount=1, now=clock.now())
        assert session.scalar(select(func.count()).select_from(Event).where(Event.type == "deal_won")) == 1

    def test_won_without_an_amount_records_no_event(self, session: Session, acme: Partner, clock: FixedClock) -> None:
        deal = open_deal(session, acme, clock)
        move_deal(session, actor=STAFF, deal_id=deal.id, status="won", now=clock.now())
        assert deal.status == "won" and deal.event_id is None

    def test_lost_needs_a_reason(self, session: Session, acme: Partner, clock: FixedClock) -> None:
        deal = open_deal(session, acme, clock)
        with pytest.raises(ValidationError) as err:
            move_deal(session, actor=STAFF, deal_id=deal.id, status="lost", now=clock.now())
        assert err.value.field == "reason"
        move_deal(
            session, actor=STAFF, deal_id=deal.id, status="lost", reason="went with a competitor", now=clock.now()
        )
        assert (deal.status, deal.lost_reason) == ("lost", "went with a competitor")

    def test_the_crm_id_finds_the_deal_and_cannot_be_taken_twice(
        self, session: Session, prog: Program, acme: Partner, clock: FixedClock
    ) -> None:
        deal, other = open_deal(session, acme, clock), open_deal(session, acme, clock, "Initech")
        link_crm(session, actor=STAFF, deal_id=deal.id, crm_id="hs-1", now=clock.now())
        assert deal_by_crm_id(session, program_id=prog.id, crm_id="hs-1") is deal
        with pytest.raises(ValidationError):
            link_crm(session, actor=STAFF, deal_id=other.id, crm_id="hs-1", now=clock.now())
        move_deal(session, actor=STAFF, deal_id=deal.id, stage="demo", source="hubspot", now=clock.now())
        after = session.scalar(select(AuditEntry.after).where(AuditEntry.action == "deal.stage"))
        assert after is not None and after["source"] == "hubspot"


ACTIONS = st.lists(
    st.sampled_from(["accept", "reject", "qualified", "demo", "negotiation", "bogus", "won", "lost"]),
    max_size=8,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS)
def test_any_sequence_of_decisions_keeps_the_lead_and_deal_consistent(
    session: Session, acme: Partner, clock: FixedClock, actions: list[str]
) -> None:
    """Whatever staff try in whatever order: registered → accepted|rejected once; closed deals never move;
    a won deal has exactly one deal_won event; a refused step changes nothing."""
    clock.advance(timedelta(seconds=1))
    item = register_lead(session, actor=as_partner(acme), program_id=acme.program_id, company="Prop",
                         domain=None, now=clock.now())  # fmt: skip
    for action in actions:
        deal = session.scalar(select(Deal).where(Deal.lead_id == item.id))
        before = (item.status, deal.status if deal else None, deal.stage if deal else None)
        try:
            if action == "accept":
                accept_leads(session, actor=STAFF, lead_ids=[item.id], now=clock.now())
            elif action == "reject":
                reject_leads(session, actor=STAFF, lead_ids=[item.id], reason="no", now=clock.now())
            elif deal is None:
                continue
            elif action in ("won", "lost"):
                move_deal(session, actor=STAFF, deal_id=deal.id, status=action, amount=100 if action == "won" else None,
                          reason="x", now=clock.now())  # fmt: skip
            else:
                move_deal(session, actor=STAFF, deal_id=deal.id, stage=action, now=clock.now())
        except PartnerpayError:
            session.refresh(item)
            if deal is not None:
                session.refresh(deal)
            assert before == (item.status, deal.status if deal else None, deal.stage if deal else None)
            continue
        session.refresh(item)
        deal = session.scalar(select(Deal).where(Deal.lead_id == item.id))
        assert before[0] in ("registered", item.status)  # a decision happens once
        if before[1] in ("won", "lost"):
            raise AssertionError(f"a {before[1]} deal moved by {action}")
    deal = session.scalar(select(Deal).where(Deal.lead_id == item.id))
    assert (deal is not None) == (item.status == "accepted")
    won_events = session.scalar(
        select(func.count()).select_from(Event).where(Event.external_id == f"deal:{deal.id if deal else ''}")
    )
    assert won_events == (1 if deal is not None and deal.status == "won" else 0)
    assert session.get(Lead, item.id) is not None
