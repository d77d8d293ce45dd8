"""Recalculation on a real database: a late invoice changes a marginal tier for events already evaluated; the
partner's lines are re-derived by reversing and re-creating (never editing) until they equal a fresh replay of
all events in time order, `partnerpay verify` still ties out, and a second run writes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import ROLE_SCOPES, SYSTEM, Actor, ActorType
from partnerpay.cli import app
from partnerpay.commissions.decisions import approve_lines
from partnerpay.commissions.history import History
from partnerpay.commissions.models import CommissionLine
from partnerpay.commissions.plan_earn import event_facts, not_reversed, plan_rules
from partnerpay.commissions.recalculate import DERIVED, Recalculation, recalculate
from partnerpay.commissions.recalculate_auto import RECALCULATE_JOB
from partnerpay.commissions.replay import replay
from partnerpay.events.models import Customer, Event
from partnerpay.events.schemas import EventIn
from partnerpay.events.service import record_event
from partnerpay.fx.service import add_rates
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.models import JobStatus, OutboxJob
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Forbidden, NotFound
from partnerpay.ledger import service as ledger
from partnerpay.ledger.models import AccountKind, LedgerTransaction
from partnerpay.ledger.verify import verify
from partnerpay.partners.models import Partner
from partnerpay.payouts.models import Payout
from partnerpay.payouts.service import approve_batch, create_payout_run, mark_batch_paid
from partnerpay.plans.assignments import assign_plan
from partnerpay.plans.resolve import load_book
from partnerpay.plans.service import create_plan, publish
from partnerpay.programs.models import Program
from tests import factories

T0 = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
# 10 % for a quarter's first two customers, 30 % from the third on, each event at its own (marginal) rate.
MARGINAL = {
    "trigger": "invoice_paid",
    "tiers": [{"from_customers": 0, "percent_bp": 1000}, {"from_customers": 2, "percent_bp": 3000}],
    "tier_period": "quarter",
}


@pytest.fixture
def program(session: Session) -> Program:
    return factories.program(session, T0, hold_days=30, default_percent_bp=1000)


@pytest.fixture
def partner(session: Session, program: Program) -> Partner:
    return factories.partner(session, program, T0, name="Acme")


def on_plan(session: Session, program: Program, rules: list[dict[str, Any]]) -> str:
    plan, _ = create_plan(session, actor=SYSTEM, program_id=program.id, name="Standard", rules=rules, now=T0)
    version = publish(session, actor=SYSTEM, plan_id=plan.id, now=T0)
    assign_plan(session, actor=SYSTEM, plan_id=plan.id, scope="program", now=T0, effective_from=T0 - 10 * DAY)
    return version.id


def pay(
    session: Session,
    program: Program,
    external_id: str,
    customer: str,
    at: datetime,
    *,
    partner: Partner | None = None,
    amount: int = 10_000,
    type: str = "invoice_paid",
    original: str | None = None,
    currency: str | None = None,
) -> list[CommissionLine]:
    data = EventIn(
        program_id=program.id,
        type=type,
        external_id=external_id,
        occurred_at=at,
        customer_external_id=customer,
        partner_id=partner.id if partner else None,
        amount=amount,
        currency=currency or program.currency,
        original_external_id=original,
    )
    # Recorded a day after it happened, except a late one, which is recorded whenever the test says.
    return record_event(session, actor=SYSTEM, data=data, now=max(at, T0 + 30 * DAY)).commissions


def standing(session: Session, partner: Partner) -> list[tuple[str, str, int | None, str, int]]:
    """The partner's derived lines that stand (not rejected, not reversed): (event, kind, rule, partner, amount)."""
    rows = session.execute(
        select(Event.external_id, CommissionLine.kind, CommissionLine.rule_number, CommissionLine.partner_id,
               CommissionLine.amount)
        .join(Event, Event.id == CommissionLine.event_id)
        .where(Event.partner_id == partner.id, CommissionLine.kind.in_(DERIVED),
               CommissionLine.status != "rejected", not_reversed())
    ).all()  # fmt: skip
    return sorted((str(a), str(b), c, str(d), int(e)) for a, b, c, d, e in rows)


def fresh_replay(session: Session, program: Program, partner: Partner) -> list[tuple[str, str, int | None, str, int]]:
    """Every event of the partner evaluated from nothing, in the order the events happened."""
    book = load_book(session, program.id)
    rows = session.execute(
        select(Event, Customer.external_id)
        .join(Customer, Customer.id == Event.customer_id)
        .where(Event.partner_id == partner.id)
        .order_by(Event.occurred_at, Event.created_at, Event.id)
    ).all()
    external = {e.id: e.external_id for e, _ in rows}
    events = [(event_facts(e, x), partner.id) for e, x in rows]
    done = replay(program, {partner.id: partner}, events, lambda p, at: plan_rules(book, p, at), history=History())
    return sorted(
        (external[line.draft.event_id], line.draft.kind, line.draft.rule_number, line.draft.partner_id,
         line.draft.amount)
        for r in done for line in r.lines if line.draft.kind in DERIVED
    )  # fmt: skip


def made_on(session: Session, external_id: str) -> str:
    return str(session.scalar(select(Event.id).where(Event.external_id == external_id)))


FINANCE = Actor(ActorType.STAFF, "usr_fin", frozenset({"read", "write", "approve", "payouts"}), label="fin")


def paid_out(session: Session, program: Program, at: datetime) -> list[tuple[str, int]]:
    """A payout run of everything approved and past its hold, approved and marked paid: (partner, amount)."""
    result = create_payout_run(session, actor=FINANCE, program_id=program.id, now=at)
    assert result.batch is not None
    approve_batch(session, actor=SYSTEM, batch_id=result.batch.id, now=at)
    mark_batch_paid(session, actor=SYSTEM, batch_id=result.batch.id, now=at)
    payouts = session.scalars(select(Payout).where(Payout.batch_id == result.batch.id)).all()
    return sorted((p.partner_id, p.amount) for p in payouts)


def counts(session: Session) -> tuple[int, int, int, int]:
    return tuple(  # type: ignore[return-value]
        int(session.scalar(select(func.count()).select_from(table)) or 0)
        for table in (CommissionLine, LedgerTransaction, AuditEntry, OutboxJob)
    )


def late_tier_story(session: Session, program: Program, partner: Partner) -> dict[str, CommissionLine]:
    """c0, c1, c2 pay on days 0, 2 and 4; c9's invoice of day 1 arrives after them all."""
    on_plan(session, program, [MARGINAL])
    made = {}
    for n, day in ((0, 0), (1, 2), (2, 4)):
        [made[f"in{n}"]] = pay(session, program, f"in{n}", f"c{n}", T0 + day * DAY, partner=partner)
    [made["late"]] = pay(session, program, "late", "c9", T0 + DAY, partner=partner)
    return made


def run(session: Session, program: Program, partner: Partner, **kw: Any) -> Recalculation:
    args: dict[str, Any] = {"since": T0 + DAY, "now": T0 + 40 * DAY, **kw}
    return recalculate(session, actor=SYSTEM, program_id=program.id, partner_id=partner.id, **args)


class TestRecalculate:
    def test_a_late_invoice_lifts_a_later_event_to_the_next_tier_by_reversing_and_recreating(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        made = late_tier_story(session, program, partner)
        # Live: each line as it arrived; c1's invoice counted one customer before it, so 10 %.
        assert [made[k].amount for k in ("in0", "in1", "in2", "late")] == [1000, 1000, 3000, 1000]
        old = made["in1"]
        before = (old.amount, old.status, old.explanation, old.hold_until)

        result = run(session, program, partner)

        assert [(r.original.id, r.reversal.amount if r.reversal else None) for r in result.reversed] == [
            (old.id, -1000)
        ]
        [new] = result.created
        assert (new.kind, new.amount, new.base_amount, new.rate_bp, new.event_id) == (
            "commission",
            3000,
            10_000,
            3000,
            old.event_id,
        )
        assert new.explanation.startswith(
            "30 % of €100.00 invoice in1 (tier from 2 customers: customer 3 this quarter) for customer c1"
        )
        reversal = result.reversed[0].reversal
        assert reversal is not None
        assert (reversal.kind, reversal.reverses_line_id, reversal.status, reversal.hold_until) == (
            "reversal",
            old.id,
            "pending",
            old.hold_until,
        )
        assert reversal.explanation == (
            f"reverses commission line {old.id} of €10.00 on recalculation from 06 Jan 2026: "
            f"replaced by line {new.id} of €30.00"
        )
        session.refresh(old)
        assert (old.amount, old.status, old.explanation, old.hold_until) == before  # never edited
        assert standing(session, partner) == fresh_replay(session, program, partner)
        assert [x[4] for x in standing(session, partner)] == [1000, 3000, 3000, 1000]  # in0, in1, in2, late
        assert ledger.balance(session, program.id, partner.id, AccountKind.PARTNER_PAYABLE, "EUR") == -8000
        report = verify(session)
        assert report.ok, report.problems
        audited = session.scalars(
            select(AuditEntry.object_id).where(AuditEntry.action == "commission.recalculate").order_by(AuditEntry.seq)
        ).all()
        assert sorted(audited) == sorted([reversal.id, new.id])

    def test_running_it_again_writes_nothing(self, session: Session, program: Program, partner: Partner) -> None:
        late_tier_story(session, program, partner)
        assert run(session, program, partner).changed
        written = counts(session)
        again = run(session, program, partner, now=T0 + 41 * DAY)
        assert (again.changed, again.reversed, again.created, again.clawbacks) == (False, [], [], [])
        assert counts(session) == written
        # Over all history too: the lines already equal a fresh replay.
        assert not run(session, program, partner, since=None).changed

    def test_a_dry_run_says_what_would_change_and_writes_nothing(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        made = late_tier_story(session, program, partner)
        written = counts(session)
        dry = run(session, program, partner, dry_run=True)
        assert [(r.original.id, r.reversal) for r in dry.reversed] == [(made["in1"].id, None)]
        assert [(x.event_id, x.amount) for x in dry.created] == [(made["in1"].event_id, 3000)]
        session.flush()
        assert counts(session) == written
        real = run(session, program, partner)
        assert [(x.event_id, x.amount) for x in real.created] == [(x.event_id, x.amount) for x in dry.created]

    def test_clawbacks_of_a_reversed_line_are_reversed_and_the_refund_reapplied_to_the_new_line(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        on_plan(session, program, [MARGINAL])
        for n, day in ((0, 0), (1, 2), (2, 4)):
            pay(session, program, f"in{n}", f"c{n}", T0 + day * DAY, partner=partner)
        [clawback] = pay(session, program, "re1", "c1", T0 + 5 * DAY, amount=5_000, type="refund", original="in1")
        assert clawback.amount == -500  # half of c1's 10 % line
        pay(session, program, "late", "c9", T0 + DAY, partner=partner)

        result = run(session, program, partner)

        assert sorted((r.original.kind, r.reversal.amount if r.reversal else 0) for r in result.reversed) == [
            ("clawback", 500),
            ("commission", -1000),
        ]
        [new] = result.created
        [again] = result.clawbacks
        assert (new.amount, again.amount, again.reverses_line_id, again.kind) == (3000, -1500, new.id, "clawback")
        # What c1 earns in the end: 30 % of the €50.00 it kept.
        c1 = session.scalars(
            select(CommissionLine.amount).join(Event, Event.id == CommissionLine.event_id).join(
                Customer, Customer.id == Event.customer_id).where(Customer.external_id == "c1")
        ).all()  # fmt: skip
        assert sum(c1) == 1500
        assert standing(session, partner) == fresh_replay(session, program, partner)
        assert verify(session).ok
        assert not run(session, program, partner, now=T0 + 41 * DAY).changed

    def test_an_approved_original_is_reversed_by_an_approved_line_on_the_same_hold(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        made = late_tier_story(session, program, partner)
        finance = Actor(ActorType.STAFF, "usr_fin", ROLE_SCOPES["finance"], label="fin")
        approve_lines(session, actor=finance, ids=[made["in1"].id], now=T0 + 35 * DAY)
        [reversed_] = run(session, program, partner).reversed
        assert reversed_.reversal is not None
        assert (reversed_.reversal.status, reversed_.reversal.hold_until, reversed_.reversal.approved_by) == (
            "approved",
            made["in1"].hold_until,
            "usr_fin",
        )
        assert verify(session).ok

    def test_a_payment_held_by_a_fraud_flag_counts_as_a_customer_but_earns_nothing(
        self, session: Session, program: Program
    ) -> None:
        partner = factories.partner(session, program, T0, name="Acme", email="ana@acme.io")
        on_plan(session, program, [MARGINAL])
        for n, day in ((0, 0), (1, 2)):
            pay(session, program, f"in{n}", f"c{n}", T0 + day * DAY, partner=partner)
        data = EventIn(
            program_id=program.id, type="invoice_paid", external_id="self", occurred_at=T0 + DAY,
            customer_external_id="own", customer_email="ana@acme.io", partner_id=partner.id, amount=10_000,
            currency="EUR",
        )  # fmt: skip
        held = record_event(session, actor=SYSTEM, data=data, now=T0 + 30 * DAY)
        assert held.commissions == []  # self-referral: held until staff decide
        result = run(session, program, partner)
        assert [(x.event_id, x.amount) for x in result.created] == [(made_on(session, "in1"), 3000)]
        assert [x[0] for x in standing(session, partner)] == ["in0", "in1"]

    def test_a_paid_original_is_reversed_at_once_and_nets_against_the_next_payout(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        on_plan(session, program, [MARGINAL])
        made = [pay(session, program, f"in{n}", f"c{n}", T0 + d * DAY, partner=partner)[0] for n, d in ((0, 0), (1, 2))]
        approve_lines(session, actor=FINANCE, ids=[x.id for x in made], now=T0 + 31 * DAY)
        paid_out(session, program, T0 + 40 * DAY)
        pay(session, program, "late", "c9", T0 + DAY, partner=partner)  # €10.00, pending
        [reversed_] = run(session, program, partner, now=T0 + 45 * DAY).reversed
        assert reversed_.original.id == made[1].id and reversed_.original.status == "paid"
        assert reversed_.reversal is not None
        assert (reversed_.reversal.status, reversed_.reversal.hold_until, reversed_.reversal.amount) == (
            "approved",
            T0 + 45 * DAY,
            -1000,
        )
        assert verify(session).ok
        new = session.scalars(
            select(CommissionLine).where(CommissionLine.status == "pending", CommissionLine.kind == "commission")
        ).all()
        approve_lines(session, actor=FINANCE, ids=[x.id for x in new], now=T0 + 46 * DAY)
        payout = paid_out(session, program, T0 + 80 * DAY)
        assert payout == [(partner.id, 3000)]  # late €10.00 + new €30.00 - reversed €10.00
        assert verify(session).ok

    def test_the_recruiters_two_tier_share_follows_the_recruits_line(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        recruit = factories.partner(session, program, T0, name="Recruit")
        recruit.recruited_by_id = partner.id
        session.flush()
        on_plan(session, program, [{**MARGINAL, "two_tier_percent_bp": 1000}])
        for n, day in ((0, 0), (1, 2), (2, 4)):
            pay(session, program, f"in{n}", f"c{n}", T0 + day * DAY, partner=recruit)
        pay(session, program, "late", "c9", T0 + DAY, partner=recruit)
        result = run(session, program, recruit)
        assert sorted((r.original.partner_id, r.original.kind, r.original.amount) for r in result.reversed) == sorted(
            [(recruit.id, "commission", 1000), (partner.id, "two_tier", 100)]
        )
        assert sorted((x.partner_id, x.kind, x.amount) for x in result.created) == sorted(
            [(recruit.id, "commission", 3000), (partner.id, "two_tier", 300)]
        )
        assert standing(session, recruit) == fresh_replay(session, program, recruit)
        assert verify(session).ok

    def test_invoices_in_another_currency_are_replayed_at_their_days_rate(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        add_rates(
            session, SYSTEM, program.id,
            [{"base": "USD", "quote": "EUR", "rate": "0.5", "rate_date": "2025-12-01", "source": "ECB"}], T0 - 30 * DAY,
        )  # fmt: skip
        on_plan(session, program, [MARGINAL])
        for n, day in ((0, 0), (1, 2)):
            pay(session, program, f"in{n}", f"c{n}", T0 + day * DAY, partner=partner, amount=20_000, currency="USD")
        pay(session, program, "late", "c9", T0 + DAY, partner=partner, amount=20_000, currency="USD")
        [new] = run(session, program, partner).created
        assert (new.amount, new.base_amount, new.currency) == (3000, 10_000, "EUR")  # 30 % of $200.00 at 0.5
        assert "converted: $200.00" in new.explanation
        assert not run(session, program, partner, now=T0 + 41 * DAY).changed
        assert verify(session).ok

    def test_a_line_keeps_the_default_rate_or_plan_version_it_was_made_under(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        [default] = pay(session, program, "in0", "c0", T0, partner=partner)  # no plan yet: 10 %
        assert default.amount == 1000 and default.plan_version_id is None
        written = counts(session)
        assert not run(session, program, partner, since=None).changed
        # A plan assigned afterwards, effective from before in0, applies to new events, not to in0's line.
        on_plan(session, program, [MARGINAL])
        for n in (1, 2, 3):
            pay(session, program, f"in{n}", f"c{n}", T0 + n * DAY, partner=partner)
        written = counts(session)
        assert not run(session, program, partner, since=None).changed
        assert counts(session) == written

    def test_only_staff_who_approve_or_a_writing_key_may_recalculate_and_other_programs_partners_are_not_found(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        manager = Actor(ActorType.STAFF, "usr_m", frozenset({"read", "write"}))
        with pytest.raises(Forbidden):
            recalculate(session, actor=manager, program_id=program.id, partner_id=partner.id, since=None, now=T0)
        other = factories.program(session, T0, name="Other")
        key = Actor(ActorType.API_KEY, "key_1", frozenset({"read", "write"}), program_id=other.id)
        for actor, program_id in ((key, other.id), (SYSTEM, other.id)):
            with pytest.raises(NotFound):
                recalculate(session, actor=actor, program_id=program_id, partner_id=partner.id, since=None, now=T0)


class TestAutomatic:
    def test_events_in_order_queue_nothing(self, session: Session, program: Program, partner: Partner) -> None:
        on_plan(session, program, [MARGINAL])
        for n in range(3):
            pay(session, program, f"in{n}", f"c{n}", T0 + n * DAY, partner=partner)
        assert session.scalar(select(func.count()).where(OutboxJob.kind == RECALCULATE_JOB)) == 0

    def test_a_late_event_in_another_period_of_another_customer_queues_nothing(
        self, session: Session, program: Program, partner: Partner
    ) -> None:
        on_plan(session, program, [MARGINAL])
        pay(session, program, "apr", "c1", T0 + 100 * DAY, partner=partner)  # next quarter
        pay(session, program, "jan", "c2", T0, partner=partner)
        assert session.scalar(select(func.count()).where(OutboxJob.kind == RECALCULATE_JOB)) == 0

    def test_the_outbox_job_runs_the_recalculation(self, session_factory: sessionmaker[Session]) -> None:
        with session_factory() as session:
            program = factories.program(session, T0, hold_days=30, default_percent_bp=1000)
            partner = factories.partner(session, program, T0, name="Acme")
            late_tier_story(session, program, partner)
            [job] = session.scalars(select(OutboxJob).where(OutboxJob.kind == RECALCULATE_JOB)).all()
            assert job.payload == {
                "program_id": program.id,
                "partner_id": partner.id,
                "since": (T0 + DAY).isoformat(),
            }
            session.commit()
        worker = Worker(session_factory, build_registry(), clock=FixedClock(T0 + 40 * DAY))
        assert worker.run_pending() == 1
        with session_factory() as session:
            done = session.get(OutboxJob, job.id)
            assert done is not None and (done.status, done.last_error) == (JobStatus.DONE, None)
            partner = session.get(Partner, partner.id)  # type: ignore[assignment]
            assert [x[4] for x in standing(session, partner)] == [1000, 3000, 3000, 1000]
            assert standing(session, partner) == fresh_replay(session, program, partner)
            assert verify(session).ok


class TestAnyArrivalOrder:
    @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(
        days=st.lists(st.integers(0, 80), min_size=2, max_size=6),
        order=st.randoms(use_true_random=False),
        retro=st.booleans(),
    )
    def test_after_recalculation_lines_equal_a_fresh_replay_whatever_order_invoices_arrived_in(
        self, session: Session, days: list[int], order: Any, retro: bool
    ) -> None:
        program = factories.program(session, T0, hold_days=30, default_percent_bp=1000, name=f"P{order.random()}")
        partner = factories.partner(session, program, T0, name="Acme")
        rule = {**MARGINAL, "tier_period": "month", "caps": {"per_customer": 2500}}
        if retro:
            rule["tier_mode"] = "retroactive"
        on_plan(session, program, [rule])
        invoices = [(f"in{n}", f"c{n % 3 if n % 2 else n}", T0 + day * DAY) for n, day in enumerate(days)]
        order.shuffle(invoices)
        for external_id, customer, at in invoices:
            pay(session, program, external_id, customer, at, partner=partner)
        run(session, program, partner, since=min(at for _, _, at in invoices))
        assert standing(session, partner) == fresh_replay(session, program, partner)
        assert not run(session, program, partner, since=None).changed
        assert verify(session).ok


class TestCli:
    def test_dry_run_then_run_print_the_reversed_and_new_lines(
        self, session_factory: sessionmaker[Session], database_url: str
    ) -> None:
        with session_factory() as session:
            program = factories.program(session, T0, hold_days=30, default_percent_bp=1000)
            partner = factories.partner(session, program, T0, name="Acme")
            old = late_tier_story(session, program, partner)["in1"].id
            session.commit()
        env = {"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": "s" * 40, "COLUMNS": "300"}
        cli = CliRunner(env=env)  # wide: whole ids in the table
        args = ["commissions", "recalculate", "--partner", partner.id, "--since", "2026-01-06"]
        dry = cli.invoke(app, [*args, "--dry-run"])
        assert dry.exit_code == 0, dry.output
        assert "Would change (dry run, nothing written)" in dry.output and old in dry.output
        assert "1 line(s) would be reversed, 1 created" in dry.output
        real = cli.invoke(app, args)
        assert real.exit_code == 0, real.output
        assert f"reverses {old}" in real.output and "-€10.00" in real.output and "€30.00" in real.output
        assert "4 event(s) of " in real.output and "replayed from 2026-01-01" in real.output
        again = cli.invoke(app, ["commissions", "recalculate", "--partner", partner.id])
        assert "nothing to change" in again.output
        missing = cli.invoke(app, ["commissions", "recalculate", "--partner", "ptn_nope"])
        assert missing.exit_code == 1 and "partner ptn_nope not found" in missing.output
        with session_factory() as session:
            assert verify(session).ok
