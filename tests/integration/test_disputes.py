"""Disputes: opening (partner and on its behalf), the state machine (compare-and-set, every sequence), resolution
by adjustment or rejection (audited, the partner told), the SLA, and the data the team sees side by side."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.auth.service import create_staff_user, staff_actor
from partnerpay.commissions.decisions import approve_lines
from partnerpay.commissions.models import CommissionLine
from partnerpay.disputes import queries, service
from partnerpay.disputes.case import build_case
from partnerpay.disputes.models import Dispute, DisputeStatus
from partnerpay.disputes.rules import MACHINE, sla_text
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import Conflict, Forbidden, InvalidTransition, NotFound, PartnerpayError, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.partners.models import Partner
from partnerpay.tracking.models import Click
from partnerpay.webhooks_out.models import WebhookEvent
from partnerpay.webhooks_out.subscriptions import create_subscription
from tests import factories

PASSWORD = "correct horse battery"
S = DisputeStatus


def partner_actor(partner_id: str, program_id: str) -> Actor:
    return Actor(ActorType.PARTNER, f"pu_{partner_id[-6:]}", frozenset({"read"}), program_id=program_id,
                 partner_id=partner_id, label="portal@acme.example")  # fmt: skip


@pytest.fixture
def world(session: Session, clock: FixedClock) -> dict[str, Any]:
    now = clock.now()
    prog = factories.program(session, now, name="Main")
    acme = factories.partner(session, prog, now, "Acme")
    beta = factories.partner(session, prog, now, "Beta")
    (line,) = factories.event(
        session, prog, now, external_id="inv_1", customer="cus_one", amount=100_000, partner_id=acme.id
    )  # fmt: skip  (20 % = 20,000)
    (beta_line,) = factories.event(session, prog, now, external_id="inv_2", customer="acme-corp", amount=50_000,
                                   partner_id=beta.id)  # fmt: skip
    factories.event(session, prog, now, external_id="inv_3", customer="acme-labs", amount=70_000)
    users = {role: staff_actor(create_staff_user(session, actor=SYSTEM, email=f"{role}@example.com", role=role,
                                                 password=PASSWORD, now=now))
             for role in ("manager", "finance", "viewer")}  # fmt: skip
    session.commit()
    return {"program": prog, "acme": acme.id, "beta": beta.id, "line": line.id, "beta_line": beta_line.id,
            "me": partner_actor(acme.id, prog.id), "them": partner_actor(beta.id, prog.id), **users}  # fmt: skip


def wrong_amount(session: Session, w: dict[str, Any], clock: FixedClock, who: str = "me", **kw: Any) -> Dispute:
    args = {"kind": "wrong_amount", "line_id": w["line"], "amount": 25_000,
            "description": "the plan pays 25 % on Pro", **kw}  # fmt: skip
    return service.open_dispute(session, actor=w[who], now=clock.now(), **args)


def audit_actions(session: Session, dispute_id: str) -> list[str]:
    return [e.action for e in queries.history(session, dispute_id)]


class TestOpenDispute:
    def test_a_partner_disputes_its_line_due_after_the_default_ten_days(
        self, session: Session, clock: FixedClock, world: dict[str, Any]
    ) -> None:
        d = wrong_amount(session, world, clock)
        session.commit()
        assert (d.status, d.partner_id, d.amount, d.currency) == ("open", world["acme"], 25_000, "EUR")
        assert d.due_at == clock.now() + timedelta(days=10)
        assert d.id.startswith("dsp_") and d.opened_by_type == "partner"
        assert audit_actions(session, d.id) == ["dispute.open"]

    def test_the_partners_owner_is_emailed_when_the_partner_opens_one(
        self, session: Session, clock: FixedClock, world: dict[str, Any]
    ) -> None:
        d = wrong_amount(session, world, clock)
        assert [
            j for j in session.scalars(select(OutboxJob)) if j.kind == "email.send" and d.id in str(j.payload)
        ] == []
        session.get(Partner, world["acme"]).owner_id = world["manager"].id  # type: ignore[union-attr]
        service.withdraw(session, actor=world["me"], dispute_id=d.id, now=clock.now())
        again = wrong_amount(session, world, clock)
        (email,) = [
            j for j in session.scalars(select(OutboxJob)) if j.kind == "email.send" and again.id in str(j.payload)
        ]
        assert email.payload["to"] == "manager@example.com" and "25 % on Pro" in email.payload["text"]

    def test_another_partners_line_does_not_exist_for_it(
        self, session: Session, clock: FixedClock, world: dict[str, Any]
    ) -> None:
        with pytest.raises(NotFound) as err:
            wrong_amount(session, world, clock, line_id=world["beta_line"])
        assert err.value.field == "line_id"

    def test_a_line_is_disputed_once_while_its_dispute_waits(
        self, session: Session, clock: FixedClock, world: dict[str, Any]
    ) -> None:
        first = wrong_amount(session, world, clock)
        with pytest.raises(Conflict, match=first.id):
            wrong_amount(session, world, clock)
        service.withdraw(session, actor=world["me"], dispute_id=first.id, now=clock.now())
        assert wrong_amount(session, world, clock).status == "open"

    @pytest.mark.parametrize(
        ("change", "field"),
        [({"amount": 20_000}, "amount"), ({"amount": None}, "amount"), ({"amount": 12.5}, "amount"),
         ({"description": "   "}, "description"), ({"line_id": None}, "line_id"), ({"kind": "angry"}, "kind")],
    )  # fmt: skip
    def test_bad_input_names_its_field_and_writes_nothing(
        self, session: Session, clock: FixedClock, world: dict[str, Any], change: dict[str, Any], field: str
    ) -> None:
        with pytest.raises(ValidationError) as err:
            wrong_amount(session, world, clock, **change)
        assert err.value.field == field
        assert session.scalars(select(Dispute)).all() == []

    def test_a_missing_commission_needs_who_and_when(
        self, session: Session, clock: FixedClock, world: dict[str, Any]
    ) -> None:
        base = {"kind": "missing_commission", "description": "my referral Acme was not credited"}
        with pytest.raises(ValidationError) as err:
            service.open_dispute(session, actor=world["me"], now=clock.now(), event_date=clock.now(), **base)
        assert err.value.field == "customer_ref"
        with pytest.raises(ValidationError) as err:
            service.open_dispute(session, actor=world["me"], now=clock.now(), customer_ref="Acme", **base)
        assert err.value.field == "event_date"
        d = service.open_dispute(session, actor=world["me"], now=clock.now(), customer_ref="Acme", amount=14_000,
                                 event_date=clock.now() - timedelta(days=3), **base)  # fmt: skip
        assert (d.kind, d.line_id, d.customer_ref, d.amount) == ("missing_commission", None, "Acme", 14_000)

    def test_staff_open_on_a_partners_behalf_and_a_viewer_may_not(
        self, session: Session, clock: FixedClock, world: dict[str, Any]
    ) -> None:
        d = wrong_amount(session, world, clock, who="manager")
        assert d.partner_id == world["acme"] and d.opened_by_type == "staff"
        with pytest.raises(Forbidden):
            wrong_amount(session, world, clock, who="viewer", line_id=world["beta_line"])

    def test_the_programs_sla_days_set_the_due_date(
        self, session: Session, clock: FixedClock, world: dict[str, Any]
    ) -> None:
        service.set_sla_days(session, actor=world["manager"], program_id=world["program"].id, days=3, now=clock.now())
        d = wrong_amount(session, world, clock)
        assert d.due_at == clock.now() + timedelta(days=3)
        with pytest.raises(ValidationError):
            service.set_sla_days(session, actor=world["manager"], program_id=world["program"].id, days=0,
                                 now=clock.now())  # fmt: skip
        with pytest.raises(Forbidden):
            service.set_sla_days(session, actor=world["me"], program_id=world["program"].id, days=5, now=clock.now())


class TestResolve:
    def test_adjust_adds_the_difference_as_a_pending_line_approved_by_someone_else(
        self, session: Session, clock: FixedClock, world: dict[str, Any]
    ) -> None:
        d = wrong_amount(session, world, clock)
        done = service.resolve(session, actor=world["finance"], dispute_id=d.id, action="adjust",
                               reason="Pro rate confirmed", now=clock.now())  # fmt: skip
        session.commit()
        assert done.status == "resolved_adjusted" and done.owner_id == world["finance"].id
        line = session.get(CommissionLine, done.adjustment_line_id)
        assert line is not None
        assert (line.kind, line.amount, line.status, line.partner_id) == ("adjustment", 5_000, "pending", world["acme"])
        assert d.id in line.explanation and "Pro rate confirmed" in line.explanation
        assert audit_actions(session, d.id) == ["dispute.open", "dispute.in_review", "dispute.resolved_adjusted"]
        with pytest.raises(Forbidden):  # maker-checker: the resolver does not approve its own adjustment
            approve_lines(session, actor=world["finance"], ids=[line.id], now=clock.now())
        session.rollback()
        second = staff_actor(create_staff_user(session, actor=SYSTEM, email="f2@example.com", role="finance",
                                               password=PASSWORD, now=clock.now()))  # fmt: skip
        approve_lines(session, actor=second, ids=[line.id], now=clock.now())
        assert session.get(CommissionLine, line.id).status == "approved"  # type: ignore[union-attr]

    def test_the_partner_is_told_in_the_portal_and_by_email(
        self, session: Session, clock: FixedClock, world: dict[str, Any]
    ) -> None:
        d = wrong_amount(session, world, clock)
        service.resolve(session, actor=world["manager"], dispute_id=d.id, action="reject", now=clock.now(),
                        reason="the Pro rate starts in March")  # fmt: skip
        jobs = session.scalars(select(OutboxJob).order_by(OutboxJob.id)).all()
        told = [j for j in jobs if d.id in str(j.payload)]
        assert {j.kind for j in told} == {"notify.partner", "email.send"}
        email = next(j for j in told if j.kind == "email.send")
        assert email.payload["to"] == "acme@example.com" and "the Pro rate starts in March" in email.payload["text"]
        notice = next(j for j in told if j.kind == "notify.partner")
        assert "rejected" in notice.payload["text"]

    def test_reject_needs_a_reason_and_a_partner_cannot_resolve(
        self, session: Session, clock: FixedClock, world: dict[str, Any]
    ) -> None:
        d = wrong_amount(session, world, clock)
        with pytest.raises(ValidationError) as err:
            service.resolve(session, actor=world["manager"], dispute_id=d.id, action="reject", reason=" ",
                            now=clock.now())  # fmt: skip
        assert err.value.field == "reason"
        with pytest.raises(Forbidden):
            service.resolve(session, actor=world["me"], dispute_id=d.id, action="reject", reason="no",
                            now=clock.now())  # fmt: skip
        assert session.get(Dispute, d.id).status == "open"  # type: ignore[union-attr]

    def test_a_missing_commission_without_a_claimed_amount_needs_one_to_adjust(
        self, session: Session, clock: FixedClock, world: dict[str, Any]
    ) -> None:
        d = service.open_dispute(session, actor=world["me"], now=clock.now(), kind="missing_commission",
                                 description="Acme Labs", customer_ref="acme-labs", event_date=clock.now())  # fmt: skip
        with pytest.raises(ValidationError) as err:
            service.resolve(session, actor=world["manager"], dispute_id=d.id, action="adjust", reason="ok",
                            now=clock.now())  # fmt: skip
        assert err.value.field == "amount"
        done = service.resolve(session, actor=world["manager"], dispute_id=d.id, action="adjust", amount=14_000,
                               reason="credited by hand", now=clock.now())  # fmt: skip
        assert session.get(CommissionLine, done.adjustment_line_id).amount == 14_000  # type: ignore[union-attr]

    def test_a_stale_status_is_refused_and_nothing_changes(
        self, session: Session, clock: FixedClock, world: dict[str, Any]
    ) -> None:
        d = wrong_amount(session, world, clock)
        session.commit()
        stale = Dispute(**{c.name: getattr(d, c.name) for c in Dispute.__table__.columns})
        service.withdraw(session, actor=world["me"], dispute_id=d.id, now=clock.now())
        session.expunge(d)
        with pytest.raises(InvalidTransition):
            service.transition(session, stale, to=S.IN_REVIEW, actor=world["manager"], now=clock.now())


class TestQueues:
    def test_overdue_is_waiting_past_the_due_date_for_both_sides(
        self, session: Session, clock: FixedClock, world: dict[str, Any]
    ) -> None:
        d = wrong_amount(session, world, clock)
        later = clock.now() + timedelta(days=12)
        assert [x.id for x in queries.list_disputes(session, world["me"], now=later, overdue=True).data] == [d.id]
        assert queries.list_disputes(session, world["them"], now=later).data == []
        assert sla_text(d.status, d.due_at, later) == "overdue by 2 days"
        assert sla_text(d.status, d.due_at, clock.now()) == "due in 10 days"
        home = queries.home_queues(session, now=later)[world["program"].id]
        assert (home.waiting, home.overdue, home.unowned) == (1, 1, 1)
        service.withdraw(session, actor=world["me"], dispute_id=d.id, now=later)
        assert queries.list_disputes(session, world["me"], now=later, overdue=True).data == []


class TestCase:
    def test_a_disputed_line_shows_its_event_rule_and_attribution(
        self, session: Session, clock: FixedClock, world: dict[str, Any]
    ) -> None:
        d = wrong_amount(session, world, clock)
        case = build_case(session, world["manager"], d)
        assert case.line is not None and case.line.id == world["line"]
        assert case.event is not None and case.event.external_id == "inv_1"
        assert case.customer is not None and case.customer.decision is not None
        assert case.customer.decision.partner_id == world["acme"]

    def test_a_claim_finds_matching_customers_and_says_why_they_did_not_credit_this_partner(
        self, session: Session, clock: FixedClock, world: dict[str, Any]
    ) -> None:
        now = clock.now()
        session.add_all([Click(id=new_id("clk"), program_id=world["program"].id, partner_id=world["acme"],
                               code="acme", at=now - timedelta(days=d), destination="https://x.example")
                         for d in (1, 5, 30)])  # fmt: skip
        d = service.open_dispute(session, actor=world["me"], now=now, kind="missing_commission", customer_ref="ACME",
                                 description="my referral Acme was not credited", event_date=now)  # fmt: skip
        case = build_case(session, world["manager"], d)
        verdicts = {m.view.customer.external_id: (m.credited_here, m.verdict) for m in case.matches}
        assert verdicts["acme-corp"] == (False, verdicts["acme-corp"][1])
        assert "another partner, Beta" in verdicts["acme-corp"][1]
        assert verdicts["acme-labs"][1].startswith("credited to nobody")
        assert case.clicks_total == 2  # the click 30 days before is outside the window


OPS = ("review", "adjust", "reject", "withdraw", "withdraw_staff")
NEXT = {"review": S.IN_REVIEW, "adjust": S.RESOLVED_ADJUSTED, "reject": S.REJECTED, "withdraw": S.WITHDRAWN,
        "withdraw_staff": S.WITHDRAWN}  # fmt: skip


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(ops=st.lists(st.sampled_from(OPS), max_size=6))
def test_every_sequence_moves_only_along_the_machine_and_audits_each_move(
    session: Session, clock: FixedClock, ops: list[str]
) -> None:
    session.rollback()  # each example starts from the empty database of the test
    now = clock.now()
    prog = factories.program(session, now, name=f"P {new_id('prg')}")
    acme = factories.partner(session, prog, now, "Acme", email=f"{new_id('ptn')}@example.com")
    (line,) = factories.event(session, prog, now, external_id=new_id("evt"), customer=new_id("cus"), amount=10_000,
                              partner_id=acme.id)  # fmt: skip
    manager = staff_actor(create_staff_user(session, actor=SYSTEM, email=f"{new_id('usr')}@example.com",
                                            role="manager", password=PASSWORD, now=now))  # fmt: skip
    me = partner_actor(acme.id, prog.id)
    d = service.open_dispute(session, actor=me, kind="wrong_amount", line_id=line.id, amount=3_000,
                             description="expected more", now=now)  # fmt: skip
    expected, moves = S.OPEN, 1
    for op in ops:
        want = NEXT[op]
        # resolving an open dispute takes it into review first (two moves)
        via_review = op in ("adjust", "reject") and expected is S.OPEN
        ok = MACHINE.allowed(S.IN_REVIEW if via_review else expected, want)
        try:
            with session.begin_nested():
                if op == "review":
                    service.start_review(session, actor=manager, dispute_id=d.id, now=now)
                elif op in ("adjust", "reject"):
                    service.resolve(session, actor=manager, dispute_id=d.id, action=op, reason="decided", now=now)
                else:
                    service.withdraw(session, actor=me if op == "withdraw" else manager, dispute_id=d.id, now=now)
        except PartnerpayError:
            assert not ok, f"{op} from {expected} was refused"
            continue
        assert ok, f"{op} from {expected} was allowed"
        moves += 2 if via_review else 1
        expected = want
    session.expire_all()
    stored = session.get(Dispute, d.id)
    assert stored is not None and stored.status == expected.value
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == d.id)).all()
    assert len(actions) == moves
    adjustments = session.scalars(select(CommissionLine).where(CommissionLine.kind == "adjustment",
                                                               CommissionLine.partner_id == acme.id)).all()  # fmt: skip
    assert len(adjustments) == (1 if expected is S.RESOLVED_ADJUSTED else 0)
    assert (stored.adjustment_line_id is not None) == (expected is S.RESOLVED_ADJUSTED)


class TestWebhooks:
    def test_each_change_emits_dispute_updated_to_subscribers(
        self, session: Session, clock: FixedClock, world: dict[str, Any]
    ) -> None:
        box, url = SecretBox("k" * 40), "https://hooks.example.com/pp"
        create_subscription(session, actor=world["manager"], box=box, program_id=world["program"].id, url=url,
                            event_types=["dispute.updated"], now=clock.now())  # fmt: skip
        d = wrong_amount(session, world, clock)
        service.resolve(session, actor=world["manager"], dispute_id=d.id, action="reject", reason="no", now=clock.now())
        bodies = [json.loads(e.body) for e in session.scalars(select(WebhookEvent).order_by(WebhookEvent.id))]
        assert [b["type"] for b in bodies] == ["dispute.updated"] * 3
        assert [b["data"]["status"] for b in bodies] == ["open", "in_review", "rejected"]
        assert {b["data"]["id"] for b in bodies} == {d.id}
