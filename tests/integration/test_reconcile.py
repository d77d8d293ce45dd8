"""Reconciliation: provider and bank results move payouts to paid, failed or returned, exactly once."""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.commissions.decisions import approve_lines
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Forbidden, InvalidTransition, NotFound
from partnerpay.ledger import service as ledger
from partnerpay.ledger.models import AccountKind
from partnerpay.ledger.verify import verify
from partnerpay.payouts.models import Payout, PayoutBatch, PayoutLineRelease, PayoutStatus
from partnerpay.payouts.reconcile import RailResult, record_results, settle_batch_paid
from partnerpay.payouts.service import PAYOUTS, approve_batch, create_payout_run
from tests import factories

VIEWER = Actor(ActorType.STAFF, "usr_viewer", frozenset({"read"}))


def approved_batch(
    session: Session, clock: FixedClock, partners: int = 3, *, sent: bool = False, sending: bool = False
) -> list[Payout]:
    """A program whose approved batch pays `partners` partners 20, 40, 60 EUR (two lines each)."""
    prog = factories.program(session, clock.now())
    ids = []
    for n in range(partners):
        p = factories.partner(session, prog, clock.now(), f"P{n} {prog.id}")
        for k in range(2):
            lines = factories.event(
                session,
                prog,
                clock.now(),
                external_id=f"inv{n}-{k}",
                customer=f"c{n}",
                amount=5_000 * (n + 1),
                partner_id=p.id,
            )
            ids += [line.id for line in lines]
    approve_lines(session, actor=SYSTEM, ids=ids, now=clock.now())
    run = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=clock.now())
    assert run.batch is not None
    approve_batch(session, actor=SYSTEM, batch_id=run.batch.id, now=clock.now())
    payouts = list(session.scalars(select(Payout).where(Payout.batch_id == run.batch.id).order_by(Payout.partner_id)))
    if sent or sending:
        pids = [p.id for p in payouts]
        PAYOUTS.transition(session, Payout, pids, src=PayoutStatus.APPROVED, dst=PayoutStatus.SENDING)
    if sent:
        PAYOUTS.transition(session, Payout, pids, src=PayoutStatus.SENDING, dst=PayoutStatus.SENT)
    session.commit()
    return payouts


def payable(session: Session, payout: Payout) -> int:
    return ledger.balance(session, payout.program_id, payout.partner_id, AccountKind.PARTNER_PAYABLE, payout.currency)


class TestRecordResults:
    def test_paid_moves_clearing_to_cash_and_lines_to_paid(self, session: Session, clock: FixedClock) -> None:
        payouts = approved_batch(session, clock)
        summary = record_results(
            session,
            actor=SYSTEM,
            results=[RailResult(p.id, "paid", provider_ref=f"ref-{p.id}") for p in payouts],
            now=clock.now(),
        )
        session.commit()
        assert summary.counts()["paid"] == 3 and not summary.refused
        program_id = payouts[0].program_id
        assert ledger.balance(session, program_id, program_id, AccountKind.CASH, "EUR") == -12_000
        assert ledger.balance(session, program_id, program_id, AccountKind.PAYOUT_CLEARING, "EUR") == 0
        statuses = set(session.scalars(select(CommissionLine.status).where(CommissionLine.program_id == program_id)))
        assert statuses == {LineStatus.PAID.value}
        batch = session.get(PayoutBatch, payouts[0].batch_id)
        assert batch is not None and batch.status == "paid" and batch.paid_at == clock.now()
        assert session.get(Payout, payouts[0].id).provider_ref == f"ref-{payouts[0].id}"  # type: ignore[union-attr]
        assert verify(session).ok, verify(session).problems

    def test_the_same_result_twice_changes_nothing(self, session: Session, clock: FixedClock) -> None:
        payouts = approved_batch(session, clock, partners=1)
        result = RailResult(payouts[0].id, "paid")
        record_results(session, actor=SYSTEM, results=[result], now=clock.now())
        jobs = session.scalar(select(func.count()).select_from(OutboxJob))
        again = record_results(session, actor=SYSTEM, results=[result, result], now=clock.now())
        assert again.applied == [] and again.unchanged == [0, 1]
        assert session.scalar(select(func.count()).select_from(OutboxJob)) == jobs
        assert verify(session).ok

    def test_failed_restores_payable_and_releases_lines_for_the_next_run(
        self, session: Session, clock: FixedClock
    ) -> None:
        payouts = approved_batch(session, clock, sent=True)
        failing = payouts[1]
        line_ids = set(session.scalars(select(CommissionLine.id).where(CommissionLine.payout_id == failing.id)))
        record_results(
            session,
            actor=SYSTEM,
            results=[RailResult(failing.id, "failed", reason="AC04 account closed")],
            now=clock.now(),
        )
        assert payable(session, failing) == -4_000
        session.refresh(failing)
        assert (failing.status, failing.failure_reason, failing.failed_at) == (
            "failed",
            "AC04 account closed",
            clock.now(),
        )
        lines = list(session.scalars(select(CommissionLine).where(CommissionLine.id.in_(line_ids))))
        assert {(x.status, x.payout_id) for x in lines} == {("approved", None)}
        releases = list(session.scalars(select(PayoutLineRelease).where(PayoutLineRelease.payout_id == failing.id)))
        assert {r.line_id for r in releases} == line_ids and {r.reason for r in releases} == {"AC04 account closed"}
        assert verify(session).ok, verify(session).problems
        texts = [
            j.payload["text"] for j in session.scalars(select(OutboxJob).where(OutboxJob.kind == "notify.partner"))
        ]
        assert any("failed" in t and "AC04 account closed" in t for t in texts)
        # The rest of the batch is paid; the next run pays the released lines again, once.
        record_results(
            session,
            actor=SYSTEM,
            results=[RailResult(p.id, "paid") for p in payouts if p is not failing],
            now=clock.now(),
        )
        rerun = create_payout_run(
            session, actor=SYSTEM, program_id=failing.program_id, now=clock.now() + timedelta(days=1)
        )
        assert [(p.partner_id, p.amount) for p in rerun.payouts] == [(failing.partner_id, 4_000)]
        assert verify(session).ok, verify(session).problems

    def test_a_return_after_paid_moves_cash_back_to_payable(self, session: Session, clock: FixedClock) -> None:
        payouts = approved_batch(session, clock, partners=2)
        record_results(session, actor=SYSTEM, results=[RailResult(p.id, "paid") for p in payouts], now=clock.now())
        back = payouts[0]
        later = clock.now() + timedelta(days=3)
        summary = record_results(
            session, actor=SYSTEM, results=[RailResult(back.id, "returned", reason="R03 no account")], now=later
        )
        assert [(s.src.value, s.dst.value) for s in summary.applied] == [("paid", "returned")]
        program_id = back.program_id
        assert ledger.balance(session, program_id, program_id, AccountKind.CASH, "EUR") == -4_000
        assert payable(session, back) == -2_000
        session.refresh(back)
        assert back.returned_at == later and back.paid_at == clock.now()
        assert verify(session).ok, verify(session).problems

    def test_contradicting_results_are_refused_and_listed(self, session: Session, clock: FixedClock) -> None:
        payouts = approved_batch(session, clock, partners=1)
        pid = payouts[0].id
        record_results(session, actor=SYSTEM, results=[RailResult(pid, "failed", reason="x")], now=clock.now())
        summary = record_results(
            session, actor=SYSTEM, results=[RailResult(pid, "paid"), RailResult("pay_nope", "paid")], now=clock.now()
        )
        assert [r.message for r in summary.refused] == [
            f"payout {pid} is failed; a paid result cannot change it",
            "payout pay_nope not found",
        ]
        with pytest.raises(InvalidTransition):
            record_results(session, actor=SYSTEM, results=[RailResult(pid, "paid")], now=clock.now(), strict=True)
        with pytest.raises(NotFound):
            record_results(session, actor=SYSTEM, results=[RailResult("pay_x", "paid")], now=clock.now(), strict=True)

    def test_a_draft_payout_takes_no_result_and_a_viewer_none_at_all(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        p = factories.partner(session, prog, clock.now(), "Draft")
        lines = factories.event(
            session, prog, clock.now(), external_id="i", customer="c", amount=9_000, partner_id=p.id
        )
        approve_lines(session, actor=SYSTEM, ids=[x.id for x in lines], now=clock.now())
        run = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=clock.now())
        pid = run.payouts[0].id
        summary = record_results(session, actor=SYSTEM, results=[RailResult(pid, "paid")], now=clock.now())
        assert summary.refused and "is draft" in summary.refused[0].message
        with pytest.raises(Forbidden):
            record_results(session, actor=VIEWER, results=[RailResult(pid, "paid")], now=clock.now())

    def test_another_programs_actor_sees_not_found(self, session: Session, clock: FixedClock) -> None:
        payouts = approved_batch(session, clock, partners=1)
        other = Actor(ActorType.API_KEY, "key_other", frozenset({"payouts"}), program_id="prg_other")
        summary = record_results(session, actor=other, results=[RailResult(payouts[0].id, "paid")], now=clock.now())
        assert summary.refused[0].message.endswith("not found")

    def test_settle_batch_paid_pays_every_open_payout(self, session: Session, clock: FixedClock) -> None:
        payouts = approved_batch(session, clock)
        summary = settle_batch_paid(session, actor=SYSTEM, batch_id=payouts[0].batch_id, now=clock.now())
        assert summary.counts()["paid"] == 3 and summary.settled_batches == [payouts[0].batch_id]
        assert verify(session).ok


OUTCOME = st.sampled_from(["paid", "failed", "returned"])
# Where each result may come from, written out independently of reconcile.RESULTS.
ALLOWED = {
    ("sending", "paid"),
    ("sending", "failed"),
    ("sending", "returned"),
    ("approved", "paid"),
    ("approved", "failed"),
    ("approved", "returned"),
    ("sent", "paid"),
    ("sent", "failed"),
    ("sent", "returned"),
    ("paid", "returned"),
}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    start=st.sampled_from(["approved", "sending", "sent"]),
    results=st.lists(st.tuples(st.integers(0, 2), OUTCOME), min_size=1, max_size=12),
    cuts=st.lists(st.integers(1, 11), max_size=3),
)
def test_any_sequence_of_results_keeps_the_ledger_and_pays_each_line_at_most_once(
    session: Session, clock: FixedClock, start: str, results: list[tuple[int, str]], cuts: list[int]
) -> None:
    """Duplicated, reordered, contradicting results in several calls: the books always tie out."""
    payouts = approved_batch(session, clock, sent=start == "sent", sending=start == "sending")
    before = {p.id: payable(session, p) for p in payouts}
    lines_of = {
        p.id: set(session.scalars(select(CommissionLine.id).where(CommissionLine.payout_id == p.id))) for p in payouts
    }
    expected = {p.id: start for p in payouts}
    for n, outcome in results:
        pid = payouts[n].id
        if (expected[pid], outcome) in ALLOWED:
            expected[pid] = outcome
    bounds = [0, *sorted({c for c in cuts if c < len(results)}), len(results)]
    for start, end in itertools.pairwise(bounds):
        chunk = [RailResult(payouts[n].id, outcome, reason="bank says no") for n, outcome in results[start:end]]
        record_results(session, actor=SYSTEM, results=chunk, now=clock.now())
        report = verify(session)
        assert report.ok, report.problems
    for p in payouts:
        session.refresh(p)
        assert p.status == expected[p.id]
        lines = list(session.scalars(select(CommissionLine).where(CommissionLine.id.in_(lines_of[p.id]))))
        if p.status == "paid":
            assert {(x.status, x.payout_id) for x in lines} == {("paid", p.id)}
            assert payable(session, p) == before[p.id]
        elif p.status in ("failed", "returned"):
            # Exactly the payout's amount is owed again, and its lines wait for the next run.
            assert payable(session, p) == before[p.id] - p.amount
            assert {(x.status, x.payout_id) for x in lines} == {("approved", None)}
        else:
            assert {x.status for x in lines} == {"in_batch"}
    batch = session.get(PayoutBatch, payouts[0].batch_id)
    assert batch is not None
    settled = all(p.status in ("paid", "failed", "returned") for p in payouts)
    assert (batch.status == "paid") == settled
    program_id = payouts[0].program_id
    paid_total = sum(p.amount for p in payouts if p.status == "paid")
    assert ledger.balance(session, program_id, program_id, AccountKind.CASH, "EUR") == -paid_total
    session.commit()
