"""Payout runs are set-based and all-or-nothing; lines join at most one payout."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.decisions import approve_lines
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.events.schemas import EventType
from partnerpay.kit.clock import FixedClock
from partnerpay.ledger.models import LedgerTransaction
from partnerpay.ledger.verify import verify
from partnerpay.partners.models import PartnerStatus
from partnerpay.payouts.models import Payout, PayoutBatch, PayoutRun, PayoutSkip
from partnerpay.payouts.run import CRASH_POINTS
from partnerpay.payouts.service import approve_batch, create_payout_run, mark_batch_paid
from partnerpay.payouts.settings import write_settings
from tests import factories
from tests.conftest import T0
from tests.integration.payout_helpers import approved_line


class Crash(Exception):
    pass


def approved_program(session: Session, clock: FixedClock, partners: int = 3) -> tuple[str, list[str]]:
    prog = factories.program(session, clock.now())
    ids = []
    for n in range(partners):
        p = factories.partner(session, prog, clock.now(), f"P{n}")
        lines = factories.event(
            session,
            prog,
            clock.now(),
            external_id=f"inv{n}",
            customer=f"c{n}",
            amount=10_000 * (n + 1),
            partner_id=p.id,
        )
        ids += [line.id for line in lines]
    approve_lines(session, actor=SYSTEM, ids=ids, now=clock.now())
    session.commit()
    return prog.id, ids


class TestCreatePayoutRun:
    @pytest.mark.parametrize("point", ["after_payouts_insert", "after_lines_moved"])
    def test_a_crash_mid_run_leaves_nothing(self, session: Session, clock: FixedClock, point: str) -> None:
        program_id, _ = approved_program(session, clock)
        tx_before = session.scalar(select(func.count()).select_from(LedgerTransaction))

        def crash(at: str) -> None:
            if at == point:
                raise Crash(at)

        with pytest.raises(Crash):
            create_payout_run(session, actor=SYSTEM, program_id=program_id, now=clock.now(), crash=crash)
        session.rollback()
        assert session.scalar(select(func.count()).select_from(Payout)) == 0
        assert session.scalar(select(func.count()).select_from(PayoutBatch)) == 0
        assert session.scalar(select(func.count()).select_from(PayoutRun)) == 0
        assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == tx_before
        assert set(session.scalars(select(CommissionLine.status))) == {LineStatus.APPROVED.value}
        # And the run, retried, pays everything exactly once.
        result = create_payout_run(session, actor=SYSTEM, program_id=program_id, now=clock.now())
        session.commit()
        assert sorted(p.amount for p in result.payouts) == [2_000, 4_000, 6_000]
        assert verify(session).ok

    def test_suspended_and_negative_partners_are_skipped_with_reasons(
        self, session: Session, clock: FixedClock
    ) -> None:
        prog = factories.program(session, clock.now())
        ok, suspended, negative = (factories.partner(session, prog, clock.now(), n) for n in ("Ok", "Susp", "Neg"))
        ids = []
        for p in (ok, suspended, negative):
            ids += [
                x.id
                for x in factories.event(
                    session,
                    prog,
                    clock.now(),
                    external_id=f"i-{p.id}",
                    customer=f"c-{p.id}",
                    amount=10_000,
                    partner_id=p.id,
                )
            ]
        approve_lines(session, actor=SYSTEM, ids=ids, now=clock.now())
        first = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=clock.now())
        assert first.batch is not None
        approve_batch(session, actor=SYSTEM, batch_id=first.batch.id, now=clock.now())
        mark_batch_paid(session, actor=SYSTEM, batch_id=first.batch.id, now=clock.now())
        factories.event(
            session,
            prog,
            clock.now(),
            type=EventType.REFUND,
            external_id=f"r-{negative.id}",
            customer=f"c-{negative.id}",
            amount=10_000,
        )
        factories.event(
            session, prog, clock.now(), external_id=f"i2-{suspended.id}", customer=f"c-{suspended.id}", amount=5_000
        )
        approve_lines(
            session,
            actor=SYSTEM,
            ids=[line.id for line in session.scalars(select(CommissionLine).where(CommissionLine.status == "pending"))],
            now=clock.now(),
        )
        suspended.status = PartnerStatus.SUSPENDED.value
        session.flush()
        second = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=clock.now())
        assert second.payouts == [] and second.batch is None
        reasons = {s["partner_id"]: s["reason"] for s in second.skipped}
        assert reasons == {suspended.id: "partner_suspended", negative.id: "negative_balance_carried"}
        session.commit()
        assert verify(session).ok

    def test_lines_still_on_hold_wait_for_a_later_run(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now(), hold_days=30)
        p = factories.partner(session, prog, clock.now())
        lines = factories.event(
            session, prog, clock.now(), external_id="i1", customer="c1", amount=1000, partner_id=p.id
        )
        approve_lines(session, actor=SYSTEM, ids=[lines[0].id], now=clock.now())
        assert create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=clock.now()).payouts == []
        exactly_at_hold = clock.now() + timedelta(days=30)
        result = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=exactly_at_hold)
        assert [p.amount for p in result.payouts] == [200]

    def test_two_concurrent_runs_never_put_a_line_in_two_payouts(
        self, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        with session_factory() as s:
            program_id, _ = approved_program(s, clock, partners=20)
        results: list[int] = []
        errors: list[Exception] = []
        barrier = threading.Barrier(2)

        def run() -> None:
            with session_factory() as s:
                barrier.wait()
                try:
                    results.append(
                        len(create_payout_run(s, actor=SYSTEM, program_id=program_id, now=clock.now()).payouts)
                    )
                    s.commit()
                except Exception as exc:  # pragma: no cover - reported below
                    s.rollback()
                    errors.append(exc)

        threads = [threading.Thread(target=run) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not errors
        assert sorted(results) == [0, 20]
        with session_factory() as s:
            assert s.scalar(select(func.count()).select_from(Payout)) == 20
            assert verify(s).ok


@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_crash_at_any_named_point_leaves_nothing_and_a_restart_pays_each_line_once(
    session_factory: sessionmaker[Session], clock: FixedClock, point: str
) -> None:
    """Every named point of the set-based run, two currencies and a skip: all or nothing, then exactly once."""
    now = clock.now()
    with session_factory() as s:
        prog = factories.program(s, now)
        partners = [factories.partner(s, prog, now, f"P{n}") for n in range(4)]
        for n, partner in enumerate(partners):
            approved_line(s, prog.id, partner.id, 1_000 * (n + 1), now)
            approved_line(s, prog.id, partner.id, 700, now, currency="USD")
        approved_line(s, prog.id, partners[0].id, -9_000, now)  # P0 nets negative in EUR: carried
        s.commit()
        program_id = prog.id

    def crash(at: str) -> None:
        if at == point:
            raise Crash(at)

    with session_factory() as s:
        with pytest.raises(Crash):
            create_payout_run(s, actor=SYSTEM, program_id=program_id, now=now, crash=crash)
        s.rollback()
    with session_factory() as s:
        assert s.scalar(select(func.count()).select_from(Payout)) == 0
        assert s.scalar(select(func.count()).select_from(PayoutRun)) == 0
        assert s.scalar(select(func.count()).select_from(PayoutSkip)) == 0
        assert set(s.scalars(select(CommissionLine.status))) == {LineStatus.APPROVED.value}
        assert verify(s).ok
    with session_factory() as s:  # the restart
        result = create_payout_run(s, actor=SYSTEM, program_id=program_id, now=now)
        s.commit()
        assert result.totals == {"EUR": 9_000, "USD": 2_800}
        assert len(result.batches) == 2
        again = create_payout_run(s, actor=SYSTEM, program_id=program_id, now=now)
        s.commit()
        assert again.payouts == [] and again.batches == []
        in_payouts = s.scalars(select(CommissionLine.payout_id).where(CommissionLine.payout_id.is_not(None))).all()
        assert len(in_payouts) == 7  # 3 EUR lines + 4 USD lines; P0's EUR lines wait
        report = verify(s)
        assert report.ok, report.problems


LINES = st.lists(
    st.tuples(
        st.integers(0, 3),  # partner
        st.integers(-5_000, 5_000).filter(bool),  # amount
        st.sampled_from(["EUR", "USD"]),
        st.booleans(),  # still on hold
    ),
    max_size=25,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=LINES, minimum=st.sampled_from([0, 1, 2_000]))
def test_payouts_sum_exactly_to_the_eligible_lines(
    session_factory: sessionmaker[Session], lines: list[tuple[int, int, str, bool]], minimum: int
) -> None:
    now = T0
    with session_factory() as s:
        prog = factories.program(s, now)
        partners = [factories.partner(s, prog, now, f"P{n}") for n in range(4)]
        expected: dict[tuple[str, str], tuple[int, int]] = {}
        for who, amount, currency, held in lines:
            pid = partners[who].id
            approved_line(s, prog.id, pid, amount, now, currency=currency, hold_until=now + timedelta(days=int(held)))
            if not held:
                total, count = expected.get((pid, currency), (0, 0))
                expected[(pid, currency)] = (total + amount, count + 1)
        write_settings(s, actor=SYSTEM, program_id=prog.id, now=now,
                       data={"schedule": "manual", "require_verified_method": False,
                             "minimums": {"EUR": minimum, "USD": minimum}})  # fmt: skip
        result = create_payout_run(s, actor=SYSTEM, program_id=prog.id, now=now)
        s.commit()
        paid = {(p.partner_id, p.currency): (p.amount, p.line_count) for p in result.payouts}
        assert paid == {k: v for k, v in expected.items() if v[0] > 0 and v[0] >= minimum}
        skipped = {(x["partner_id"], x["currency"]) for x in result.skipped}
        assert skipped == set(expected) - set(paid)
        # Each line in at most one payout, and a payout's lines are exactly what it says.
        for payout in result.payouts:
            total, count = s.execute(
                select(func.sum(CommissionLine.amount), func.count()).where(CommissionLine.payout_id == payout.id)
            ).one()
            assert (int(total), int(count)) == (payout.amount, payout.line_count)
        assert create_payout_run(s, actor=SYSTEM, program_id=prog.id, now=now).payouts == []
        s.commit()
        report = verify(s)
        assert report.ok, report.problems
