"""Fraud flags: held commissions, staff decisions that earn exactly once, and the click sweep."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import Event
from partnerpay.events.schemas import EventType
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import InvalidTransition, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.partners.models import Partner
from partnerpay.programs.models import Program
from partnerpay.tracking import fraud, fraud_queries
from partnerpay.tracking.attribution_models import FlagStatus, FraudFlag
from partnerpay.tracking.models import Click
from tests import factories
from tests.integration.test_attribution import add_click, send

DAY = timedelta(days=1)


@pytest.fixture
def world(session: Session, clock: FixedClock) -> tuple[Program, Partner]:
    prog = factories.program(session, clock.now())
    acme = factories.partner(session, prog, clock.now(), "Acme", email="ana@acme-media.com")
    return prog, acme


def self_referred_payment(session: Session, prog: Program, acme: Partner, now: datetime) -> tuple[str, FraudFlag]:
    r = send(session, prog, now, partner_id=acme.id, customer_email="boss@acme-media.com", type=EventType.INVOICE_PAID)
    assert r.commissions == []
    flag = session.scalars(select(FraudFlag).where(FraudFlag.event_id == r.event.id)).one()
    return r.event.id, flag


def lines_of(session: Session, event_id: str) -> list[CommissionLine]:
    return list(session.scalars(select(CommissionLine).where(CommissionLine.event_id == event_id)))


class TestHold:
    def test_release_earns_the_held_commission_exactly_once(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner]
    ) -> None:
        prog, acme = world
        event_id, flag = self_referred_payment(session, prog, acme, clock.now())
        done = fraud.resolve_flag(
            session, actor=SYSTEM, flag_id=flag.id, to=FlagStatus.RELEASED, reason="known reseller", now=clock.now()
        )
        assert done.flag.status == "released" and done.flag.resolved_by == "system"
        assert [line.amount for line in done.commissions] == [2_000]
        assert "Attributed to Acme: named on the invoice paid event by partner_id" in done.commissions[0].explanation
        with pytest.raises(InvalidTransition):
            fraud.resolve_flag(session, actor=SYSTEM, flag_id=flag.id, to=FlagStatus.RELEASED, reason="again",
                               now=clock.now())  # fmt: skip
        assert len(lines_of(session, event_id)) == 1

    def test_a_refund_while_held_is_clawed_back_when_the_flag_is_released(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner]
    ) -> None:
        prog, acme = world
        event_id, flag = self_referred_payment(session, prog, acme, clock.now())
        paid = session.get(Event, event_id)
        assert paid is not None
        refund = send(session, prog, clock.now() + DAY, type=EventType.REFUND, amount=4_000, currency="EUR",
                      original_external_id=paid.external_id)  # fmt: skip
        assert refund.commissions == []
        done = fraud.resolve_flag(session, actor=SYSTEM, flag_id=flag.id, to=FlagStatus.RELEASED, reason="ok",
                                  now=clock.now() + 2 * DAY)  # fmt: skip
        assert [(line.kind, line.amount) for line in done.commissions] == [("commission", 2_000), ("clawback", -800)]

    def test_confirm_earns_nothing(self, session: Session, clock: FixedClock, world: tuple[Program, Partner]) -> None:
        prog, acme = world
        event_id, flag = self_referred_payment(session, prog, acme, clock.now())
        done = fraud.resolve_flag(session, actor=SYSTEM, flag_id=flag.id, to=FlagStatus.CONFIRMED, reason="own shop",
                                  now=clock.now())  # fmt: skip
        assert done.commissions == [] and lines_of(session, event_id) == []
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == flag.id)).all()
        assert actions == ["fraud_flag.create", "fraud_flag.confirm"]

    def test_dismissed_customer_is_not_flagged_again_on_its_next_payment(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner]
    ) -> None:
        prog, acme = world
        _, flag = self_referred_payment(session, prog, acme, clock.now())
        fraud.resolve_flag(session, actor=SYSTEM, flag_id=flag.id, to=FlagStatus.DISMISSED, reason="their client",
                           now=clock.now())  # fmt: skip
        r = send(session, prog, clock.now() + DAY, type=EventType.INVOICE_PAID)
        assert r.event.partner_id == acme.id and [line.amount for line in r.commissions] == [2_000]

    def test_without_hold_a_flagged_event_earns_at_once(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner]
    ) -> None:
        prog, acme = world
        prog.hold_flagged_events = False
        r = send(session, prog, clock.now(), partner_id=acme.id, customer_email="ana@acme-media.com",
                 type=EventType.INVOICE_PAID)  # fmt: skip
        assert r.commissions and session.scalar(select(func.count()).select_from(FraudFlag)) == 1

    def test_fast_conversion_is_flagged_and_held_until_released(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner]
    ) -> None:
        prog, acme = world
        now = clock.now()
        click = add_click(session, prog, acme, now - timedelta(seconds=fraud.FAST_CONVERSION_SECONDS - 1))
        slow = add_click(session, prog, acme, now - timedelta(seconds=fraud.FAST_CONVERSION_SECONDS))
        fast = send(session, prog, now, click_id=click.id, type=EventType.INVOICE_PAID, customer_external_id="f")
        ok = send(session, prog, now, click_id=slow.id, type=EventType.INVOICE_PAID, customer_external_id="s")
        assert fast.commissions == [] and ok.commissions
        flag = session.scalars(select(FraudFlag).where(FraudFlag.event_id == fast.event.id)).one()
        assert flag.kind == "fast_conversion" and flag.click_id == click.id
        done = fraud.resolve_flag(session, actor=SYSTEM, flag_id=flag.id, to=FlagStatus.RELEASED, reason="checked",
                                  now=now)  # fmt: skip
        assert len(done.commissions) == 1

    def test_a_reason_is_required_and_a_partner_never_sees_flags(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner]
    ) -> None:
        prog, acme = world
        _, flag = self_referred_payment(session, prog, acme, clock.now())
        with pytest.raises(ValidationError) as caught:
            fraud.resolve_flag(session, actor=SYSTEM, flag_id=flag.id, to=FlagStatus.RELEASED, reason=" ",
                               now=clock.now())  # fmt: skip
        assert caught.value.field == "reason"
        partner_user = Actor(ActorType.PARTNER, "pu_x", frozenset({"read", "write"}), prog.id, acme.id)
        with pytest.raises(NotFound):
            fraud.resolve_flag(session, actor=partner_user, flag_id=flag.id, to=FlagStatus.RELEASED, reason="mine",
                               now=clock.now())  # fmt: skip


def clicks(session: Session, prog: Program, partner: Partner, at: datetime, n: int, ip: str) -> None:
    session.add_all(
        Click(id=new_id("clk"), program_id=prog.id, partner_id=partner.id, code="acme.x", ip_hash=ip,
              at=at - timedelta(seconds=i), destination="https://x.example.com/")
        for i in range(n)
    )  # fmt: skip
    session.flush()


class TestScan:
    def test_ip_burst_is_flagged_once_per_hour_and_not_below_the_threshold(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner]
    ) -> None:
        prog, acme = world
        now = clock.now()
        clicks(session, prog, acme, now, fraud.IP_BURST_CLICKS, "burst")
        clicks(session, prog, acme, now, fraud.IP_BURST_CLICKS - 1, "calm")
        found = fraud.scan_clicks(session, actor=SYSTEM, program_id=prog.id, now=now)
        assert [(f.kind, f.dedupe_key) for f in found] == [("ip_burst", f"{acme.id}:burst")]
        assert fraud.scan_clicks(session, actor=SYSTEM, program_id=prog.id, now=now + timedelta(minutes=30)) == []

    def test_busy_partner_without_conversions_is_flagged_and_one_with_a_signup_is_not(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner]
    ) -> None:
        prog, acme = world
        beta = factories.partner(session, prog, clock.now(), "Beta")
        now = clock.now()
        for partner in (acme, beta):
            # spread over days and addresses so that no ip burst muddies the result
            for day in range(fraud.IDLE_CLICKS // 10):
                clicks(session, prog, partner, now - day * DAY, 10, f"ip-{day}")
        send(session, prog, now - DAY, partner_id=beta.id)
        found = fraud.scan_clicks(session, actor=SYSTEM, program_id=prog.id, now=now)
        assert [(f.kind, f.partner_id) for f in found] == [("clicks_without_conversions", acme.id)]
        assert fraud.scan_clicks(session, actor=SYSTEM, program_id=prog.id, now=now + DAY) == []


class TestList:
    def test_filters_by_status_and_kind_and_refuses_an_unknown_status(
        self, session: Session, clock: FixedClock, world: tuple[Program, Partner]
    ) -> None:
        prog, acme = world
        self_referred_payment(session, prog, acme, clock.now())
        assert len(fraud_queries.list_flags(session, SYSTEM, program_id=prog.id, status="open").data) == 1
        assert fraud_queries.list_flags(session, SYSTEM, kind="ip_burst").data == []
        with pytest.raises(ValidationError):
            fraud_queries.list_flags(session, SYSTEM, status="maybe")
