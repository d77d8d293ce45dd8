"""Stateful property test: any interleaving of events, refunds, decisions, runs and payments ties out.

After every step: `verify` is clean (balances = postings, lines = payouts = batches = file = ledger,
audit chain intact), no line is in two payouts, and no partner ever got back more than earned.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.decisions import approve_lines, reject_lines
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.events.models import Event, RefundAllocation
from partnerpay.events.schemas import EventType
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import PartnerpayError
from partnerpay.kit.money import round_ratio
from partnerpay.ledger.verify import verify
from partnerpay.payouts.models import Payout, PayoutBatch
from partnerpay.payouts.service import approve_batch, create_payout_run, mark_batch_paid
from tests import factories
from tests.conftest import T0


def make_machine(session_factory: sessionmaker[Session]) -> type[RuleBasedStateMachine]:
    class Lifecycle(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.clock = FixedClock(T0)
            self.session = session_factory()
            self.program = factories.program(self.session, self.clock.now(), hold_days=10, default_percent_bp=1750)
            self.partners = [factories.partner(self.session, self.program, self.clock.now(), f"P{n}") for n in range(3)]
            self.session.commit()
            self.counter = 0

        def teardown(self) -> None:
            self.session.close()

        def _next(self, prefix: str) -> str:
            self.counter += 1
            return f"{prefix}{self.counter}-{self.program.id}"

        @rule(partner=st.integers(0, 2), customer=st.integers(0, 3), amount=st.integers(1, 500_000))
        def invoice(self, partner: int, customer: int, amount: int) -> None:
            factories.event(
                self.session,
                self.program,
                self.clock.now(),
                external_id=self._next("inv"),
                customer=f"c{customer}-{self.program.id}",
                amount=amount,
                partner_id=self.partners[partner].id,
            )
            self.session.commit()

        @rule(customer=st.integers(0, 3), share=st.integers(1, 100), named=st.booleans())
        def refund(self, customer: int, share: int, named: bool) -> None:
            paying = self.session.scalars(
                select(Event).where(
                    Event.program_id == self.program.id, Event.type == "invoice_paid", Event.external_id.like("inv%")
                )
            ).all()
            mine = [
                e
                for e in paying
                if e.customer_id
                and e.partner_id is not None
                and e.external_id
                and e.customer_id == self._customer_id(customer)
            ]
            if not mine:
                return
            target = mine[-1]
            try:
                factories.event(
                    self.session,
                    self.program,
                    self.clock.now(),
                    type=EventType.REFUND,
                    external_id=self._next("re"),
                    customer=f"c{customer}-{self.program.id}",
                    amount=max(1, (target.amount or 0) * share // 100),
                    original_external_id=target.external_id if named else None,
                )
                self.session.commit()
            except PartnerpayError:
                self.session.rollback()  # refunding more than is left is refused, and writes nothing

        def _customer_id(self, customer: int) -> str | None:
            from partnerpay.events.models import Customer

            return self.session.scalar(
                select(Customer.id).where(
                    Customer.program_id == self.program.id, Customer.external_id == f"c{customer}-{self.program.id}"
                )
            )

        @rule(data=st.data(), reject=st.booleans())
        def decide(self, data: st.DataObject, reject: bool) -> None:
            pending = self.session.scalars(
                select(CommissionLine.id).where(
                    CommissionLine.program_id == self.program.id,
                    CommissionLine.status == LineStatus.PENDING.value,
                    CommissionLine.kind == "commission",
                )
            ).all()
            if not pending:
                return
            chosen = data.draw(st.lists(st.sampled_from(pending), min_size=1, max_size=4, unique=True))
            if reject:
                reject_lines(self.session, actor=SYSTEM, ids=chosen, reason="test", now=self.clock.now())
            else:
                approve_lines(self.session, actor=SYSTEM, ids=chosen, now=self.clock.now())
            self.session.commit()

        @rule(days=st.integers(1, 15))
        def time_passes(self, days: int) -> None:
            self.clock.advance(timedelta(days=days))

        @rule()
        def run_payouts(self) -> None:
            create_payout_run(self.session, actor=SYSTEM, program_id=self.program.id, now=self.clock.now())
            self.session.commit()

        @rule(pay=st.booleans())
        def settle_batch(self, pay: bool) -> None:
            batch = self.session.scalar(
                select(PayoutBatch).where(
                    PayoutBatch.program_id == self.program.id, PayoutBatch.status.in_(["draft", "approved"])
                )
            )
            if batch is None:
                return
            if batch.status == "draft":
                approve_batch(self.session, actor=SYSTEM, batch_id=batch.id, now=self.clock.now())
            if pay:
                mark_batch_paid(self.session, actor=SYSTEM, batch_id=batch.id, now=self.clock.now())
            self.session.commit()

        @invariant()
        def ties_out(self) -> None:
            report = verify(self.session)
            assert report.ok, report.problems
            self.session.rollback()

        @invariant()
        def clawbacks_match_the_refunded_share_and_never_exceed_the_line(self) -> None:
            lines = self.session.scalars(
                select(CommissionLine).where(
                    CommissionLine.program_id == self.program.id,
                    CommissionLine.kind == "commission",
                    CommissionLine.status != "rejected",
                )
            ).all()
            for line in lines:
                event = self.session.get(Event, line.event_id)
                assert event is not None and event.amount
                # int(): PostgreSQL sums BIGINT as NUMERIC.
                refunded = int(
                    self.session.scalar(
                        select(func.coalesce(func.sum(RefundAllocation.amount), 0)).where(
                            RefundAllocation.original_event_id == event.id
                        )
                    )
                )
                clawed = -int(
                    self.session.scalar(
                        select(func.coalesce(func.sum(CommissionLine.amount), 0)).where(
                            CommissionLine.reverses_line_id == line.id, CommissionLine.status != "rejected"
                        )
                    )
                )
                assert clawed == round_ratio(line.amount * refunded, event.amount), (line.id, clawed, refunded)
                assert 0 <= clawed <= line.amount
            paid_out = self.session.scalar(
                select(func.coalesce(func.sum(Payout.amount), 0)).where(Payout.program_id == self.program.id)
            )
            earned = self.session.scalar(
                select(func.coalesce(func.sum(CommissionLine.amount), 0)).where(
                    CommissionLine.program_id == self.program.id,
                    CommissionLine.amount > 0,
                    CommissionLine.status.in_(["in_batch", "paid"]),
                )
            )
            assert paid_out <= earned
            self.session.rollback()

    return Lifecycle


@pytest.mark.usefixtures("database_url")
def test_any_interleaving_ties_out(session_factory: sessionmaker[Session]) -> None:
    machine = make_machine(session_factory)
    machine.TestCase.settings = settings(
        max_examples=12,
        stateful_step_count=25,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )
    machine.TestCase().runTest()
