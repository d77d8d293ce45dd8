"""Approval policies: validation, who may approve, maker-checker on lines and batches, the sweep (auto-approve
and overdue reminders)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.approvals import policy as policies
from partnerpay.approvals.auto import SWEEP_JOB, sweep
from partnerpay.approvals.batches import approve_batch
from partnerpay.approvals.models import ApprovalPolicy, LineFirstApproval
from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions import decisions
from partnerpay.commissions.adjustments import add_adjustment
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.events.schemas import EventType
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Forbidden, InvalidTransition, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.ledger.verify import verify
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.payouts.models import Payout, PayoutBatch
from partnerpay.payouts.service import create_payout_run
from partnerpay.tracking.attribution_models import FraudFlag
from tests import factories
from tests.integration.approval_helpers import audit_rows, line, policy, staff


class TestPolicyValidation:
    @pytest.mark.parametrize(
        ("raw", "field"),
        [
            ({"approver_roles": []}, "approver_roles"),
            ({"approver_roles": ["viewer"]}, "approver_roles"),
            ({"approver_roles": ["admin"]}, "approver_roles"),
            ({"approver_roles": "finance"}, "approver_roles"),
            ({"approver_roles": [1]}, "approver_roles"),
            ({"auto_approve_below": 12.5}, "auto_approve_below"),
            ({"auto_approve_below": True}, "auto_approve_below"),
            ({"auto_approve_below": "100"}, "auto_approve_below"),
            ({"second_approval_above": -1}, "second_approval_above"),
            ({"second_approval_above": 10**16}, "second_approval_above"),
            ({"batch_second_approval_above": 1.0}, "batch_second_approval_above"),
            ({"sla_days": 0}, "sla_days"),
            ({"sla_days": 366}, "sla_days"),
            ({"sla_days": 2.5}, "sla_days"),
            ({"sla_days": False}, "sla_days"),
            ({"auto_approve_below": 500, "second_approval_above": 100}, "auto_approve_below"),
            ({"colour": "red"}, "colour"),
        ],
    )
    def test_bad_values_name_their_field_and_change_nothing(
        self, session: Session, clock: FixedClock, raw: dict[str, Any], field: str
    ) -> None:
        prog = factories.program(session, clock.now())
        with pytest.raises(ValidationError) as caught:
            policies.put_policy(session, actor=SYSTEM, program_id=prog.id, raw=raw, now=clock.now())
        assert caught.value.field == field
        assert session.get(ApprovalPolicy, prog.id) is None

    @pytest.mark.parametrize(
        "raw",
        [
            {},
            {"approver_roles": ["owner", "manager", "finance"], "sla_days": 365},
            {"auto_approve_below": 101, "second_approval_above": 100},
            {"auto_approve_below": 0, "second_approval_above": 0, "batch_second_approval_above": 0, "sla_days": 1},
        ],
    )
    def test_good_values_are_kept_and_audited(self, session: Session, clock: FixedClock, raw: dict[str, Any]) -> None:
        prog = factories.program(session, clock.now())
        assert policies.get_policy(session, SYSTEM, prog.id).as_dict()["is_default"] is True
        saved = policies.put_policy(session, actor=SYSTEM, program_id=prog.id, raw=raw, now=clock.now())
        assert saved == policies.get_policy(session, SYSTEM, prog.id)
        for name, value in raw.items():
            got = getattr(saved, name)
            assert (sorted(got) if name == "approver_roles" else got) == (
                sorted(value) if name == "approver_roles" else value
            )
        [row] = audit_rows(session, "approval_policy.update", prog.id)
        assert row.before is not None and row.before["approver_roles"] == ["finance", "owner"]

    def test_only_the_owner_changes_a_policy(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        finance = staff(session, "finance", "fin", clock.now())
        with pytest.raises(Forbidden, match="owner role"):
            policies.put_policy(session, actor=finance, program_id=prog.id, raw={}, now=clock.now())
        owner = staff(session, "owner", "own", clock.now())
        policies.put_policy(session, actor=owner, program_id=prog.id, raw={"sla_days": 3}, now=clock.now())
        assert policies.get_policy(session, SYSTEM, prog.id).sla_days == 3


class TestWhoApprovesLines:
    def test_without_a_policy_finance_and_owner_approve_and_a_manager_is_told_why(
        self, session: Session, clock: FixedClock
    ) -> None:
        prog = factories.program(session, clock.now())
        pending = line(session, prog, clock.now(), 1_000)
        manager = staff(session, "manager", "man", clock.now())
        with pytest.raises(Forbidden, match="approving commissions needs the finance or owner role"):
            decisions.approve_lines(session, actor=manager, ids=[pending.id], now=clock.now())
        finance = staff(session, "finance", "fin", clock.now())
        decisions.approve_lines(session, actor=finance, ids=[pending.id], now=clock.now())
        assert pending.status == "approved" and pending.approved_by == finance.id

    def test_a_policy_can_let_managers_approve_or_keep_it_to_owners(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        a, b = line(session, prog, clock.now(), 1_000), line(session, prog, clock.now(), 2_000)
        manager, finance = staff(session, "manager", "man", clock.now()), staff(session, "finance", "fin", clock.now())
        policy(session, prog, clock.now(), approver_roles=["manager", "finance"])
        decisions.approve_lines(session, actor=manager, ids=[a.id], now=clock.now())
        assert a.status == "approved"
        policy(session, prog, clock.now(), approver_roles=["owner"])
        with pytest.raises(Forbidden) as caught:
            decisions.reject_lines(session, actor=finance, ids=[b.id], reason="duplicate", now=clock.now())
        assert "rejecting commissions needs the owner role" in caught.value.message and prog.id in caught.value.message
        assert b.status == "pending"

    def test_api_keys_need_the_approve_scope(self, session: Session, clock: FixedClock) -> None:
        from partnerpay.auth.actor import Actor, ActorType

        prog = factories.program(session, clock.now())
        pending = line(session, prog, clock.now(), 1_000)
        writer = Actor(ActorType.API_KEY, "key_w", frozenset({"read", "write"}))
        with pytest.raises(Forbidden, match="'approve' scope"):
            decisions.approve_lines(session, actor=writer, ids=[pending.id], now=clock.now())


class TestSecondApprovalOfLines:
    def test_above_the_threshold_two_different_finance_users_approve(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        policy(session, prog, clock.now(), second_approval_above=50_000, approver_roles=["manager", "finance", "owner"])
        big, small = line(session, prog, clock.now(), 60_000), line(session, prog, clock.now(), 50_000)
        first, manager = staff(session, "finance", "first", clock.now()), staff(session, "manager", "man", clock.now())
        second = staff(session, "owner", "second", clock.now())
        done = decisions.approve(session, actor=first, ids=[big.id, small.id], now=clock.now(), reason="checked")
        assert done.state_of(big.id) == "awaiting_second_approval" and done.state_of(small.id) == "approved"
        assert (big.status, small.status) == ("pending", "approved")
        later = clock.now() + timedelta(hours=1)
        with pytest.raises(Forbidden, match=r"you gave .* its first approval") as again:
            decisions.approve_lines(session, actor=first, ids=[big.id], now=later)
        assert again.value.extra["ids"] == [big.id]
        with pytest.raises(Forbidden, match="needs a staff user with the finance or owner role"):
            decisions.approve_lines(session, actor=manager, ids=[big.id], now=later)
        with pytest.raises(Forbidden):
            decisions.approve_lines(session, actor=SYSTEM, ids=[big.id], now=later)
        assert big.status == "pending"
        decisions.approve(session, actor=second, ids=[big.id], now=later)
        assert (big.status, big.approved_by) == ("approved", second.id)
        [first_row] = audit_rows(session, "commission.first_approve", big.id)
        [final_row] = audit_rows(session, "commission.approve", big.id)
        assert (first_row.actor_id, first_row.after and first_row.after["reason"]) == (first.id, "checked")
        assert final_row.actor_id == second.id and final_row.after is not None
        assert final_row.after["first_approved_by"] == first.id
        session.commit()
        assert verify(session).ok

    def test_the_creator_of_an_adjustment_gives_neither_approval(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        partner = factories.partner(session, prog, clock.now(), "Acme")
        policy(session, prog, clock.now(), second_approval_above=1_000)
        maker, checker = staff(session, "finance", "maker", clock.now()), staff(session, "finance", "chk", clock.now())
        third = staff(session, "owner", "third", clock.now())
        adj = add_adjustment(
            session, actor=maker, partner_id=partner.id, amount=5_000, currency="EUR", reason="deal", now=clock.now()
        )
        with pytest.raises(Forbidden, match="you created these adjustments"):
            decisions.approve_lines(session, actor=maker, ids=[adj.id], now=clock.now())
        decisions.approve_lines(session, actor=checker, ids=[adj.id], now=clock.now())
        with pytest.raises(Forbidden, match="you created these adjustments"):
            decisions.approve_lines(session, actor=maker, ids=[adj.id], now=clock.now())
        assert adj.status == "pending"
        decisions.approve_lines(session, actor=third, ids=[adj.id], now=clock.now())
        assert adj.status == "approved"

    def test_an_api_key_gives_a_first_approval_but_never_the_second(self, session: Session, clock: FixedClock) -> None:
        from partnerpay.auth.actor import Actor, ActorType

        prog = factories.program(session, clock.now())
        policy(session, prog, clock.now(), second_approval_above=100)
        big = line(session, prog, clock.now(), 1_000)
        key_a = Actor(ActorType.API_KEY, "key_a", frozenset({"read", "approve"}))
        key_b = Actor(ActorType.API_KEY, "key_b", frozenset({"read", "approve"}))
        decisions.approve_lines(session, actor=key_a, ids=[big.id], now=clock.now())
        with pytest.raises(Forbidden, match="finance or owner role"):
            decisions.approve_lines(session, actor=key_b, ids=[big.id], now=clock.now())
        assert session.get(LineFirstApproval, big.id) is not None and big.status == "pending"

    def test_a_clawback_waits_with_its_original_for_the_second_approval(
        self, session: Session, clock: FixedClock
    ) -> None:
        prog = factories.program(session, clock.now())
        policy(session, prog, clock.now(), second_approval_above=1_000)
        partner = factories.partner(session, prog, clock.now(), "Acme")
        [original] = factories.event(
            session, prog, clock.now(), external_id="inv1", customer="c1", amount=50_000, partner_id=partner.id
        )
        [clawback] = factories.event(
            session,
            prog,
            clock.now(),
            external_id="ref1",
            customer="c1",
            amount=50_000,
            partner_id=partner.id,
            type=EventType.REFUND,
            original_external_id="inv1",
        )
        assert clawback.reverses_line_id == original.id
        first, second = staff(session, "finance", "a", clock.now()), staff(session, "finance", "b", clock.now())
        done = decisions.approve(session, actor=first, ids=[original.id, clawback.id], now=clock.now())
        assert done.state_of(clawback.id) == "awaiting_second_approval"
        assert (original.status, clawback.status) == ("pending", "pending")
        decisions.approve(session, actor=second, ids=[original.id], now=clock.now())
        assert (original.status, clawback.status) == ("approved", "approved")

    def test_a_line_in_another_currency_than_the_programs_needs_two(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        pol = policies.Policy(prog.id, "EUR", second_approval_above=10_000)
        assert pol.line_needs_two(1, "USD") and not pol.line_needs_two(10_000, "EUR")
        assert not pol.line_needs_two(-50_000, "EUR")  # a clawback takes money back: never two approvers
        assert pol.batch_needs_two(1, "USD") is False  # no batch threshold set


def approved_batch_program(session: Session, clock: FixedClock, amounts: list[int]) -> tuple[str, str]:
    prog = factories.program(session, clock.now())
    ids = [line(session, prog, clock.now(), amount, f"P{n}").id for n, amount in enumerate(amounts)]
    decisions.approve_lines(session, actor=SYSTEM, ids=ids, now=clock.now())
    return prog.id, prog.currency


class TestBatchApproval:
    def make_batch(self, session: Session, clock: FixedClock, maker_role: str = "finance") -> tuple[PayoutBatch, Any]:
        program_id, _ = approved_batch_program(session, clock, [40_000, 30_000])
        maker = staff(session, maker_role, "maker", clock.now())
        run = create_payout_run(session, actor=maker, program_id=program_id, now=clock.now())
        assert run.batch is not None and run.batch.total == 70_000
        return run.batch, maker

    def test_below_the_threshold_one_approval_sends_it_on(self, session: Session, clock: FixedClock) -> None:
        batch, maker = self.make_batch(session, clock)
        prog = factories.program(session, clock.now())  # another program's policy changes nothing here
        policy(session, prog, clock.now(), batch_second_approval_above=1)
        approve_batch(session, actor=maker, batch_id=batch.id, now=clock.now())
        assert batch.status == "approved" and batch.second_approved_by is None

    def test_above_the_threshold_a_second_different_finance_user_approves(
        self, session: Session, clock: FixedClock
    ) -> None:
        batch, maker = self.make_batch(session, clock)
        from partnerpay.programs.models import Program

        program = session.get(Program, batch.program_id)
        assert program is not None
        policy(session, program, clock.now(), batch_second_approval_above=50_000)
        first = staff(session, "finance", "first", clock.now())
        manager = staff(session, "manager", "man", clock.now())
        owner = staff(session, "owner", "boss", clock.now())
        approve_batch(session, actor=first, batch_id=batch.id, now=clock.now(), reason="tie-out checked")
        assert (batch.status, batch.approved_by) == ("draft", first.id)
        statuses = set(session.scalars(select(Payout.status).where(Payout.batch_id == batch.id)))
        assert statuses == {"draft"}
        with pytest.raises(Forbidden, match=r"you gave batch .* its first approval"):
            approve_batch(session, actor=first, batch_id=batch.id, now=clock.now())
        with pytest.raises(Forbidden, match="you created the payout run"):
            approve_batch(session, actor=maker, batch_id=batch.id, now=clock.now())
        with pytest.raises(Forbidden, match="scope 'payouts'"):
            approve_batch(session, actor=manager, batch_id=batch.id, now=clock.now())
        with pytest.raises(Forbidden, match="finance or owner role"):
            approve_batch(session, actor=SYSTEM, batch_id=batch.id, now=clock.now())
        later = clock.now() + timedelta(hours=2)
        approve_batch(session, actor=owner, batch_id=batch.id, now=later)
        assert (batch.status, batch.second_approved_by, batch.second_approved_at) == ("approved", owner.id, later)
        statuses = set(session.scalars(select(Payout.status).where(Payout.batch_id == batch.id)))
        assert statuses == {"approved"}
        [first_row] = audit_rows(session, "payout_batch.first_approve", batch.id)
        [final_row] = audit_rows(session, "payout_batch.approve", batch.id)
        assert first_row.actor_id == first.id and first_row.after and first_row.after["reason"] == "tie-out checked"
        assert final_row.actor_id == owner.id and final_row.after and final_row.after["first_approved_by"] == first.id
        with pytest.raises(InvalidTransition):
            approve_batch(session, actor=first, batch_id=batch.id, now=later)
        emails = session.scalars(select(OutboxJob.payload).where(OutboxJob.kind == "email.send")).all()
        told = set(
            session.scalars(
                select(Partner.email).join(Payout, Payout.partner_id == Partner.id).where(Payout.batch_id == batch.id)
            )
        )
        staff_mail = sorted(p["to"] for p in emails if p["to"] not in told)
        assert staff_mail == ["boss@example.com", "maker@example.com"]  # finance/owner, not first
        # Each partner hears once that its payout was approved: on the final approval, not the first.
        payout_mail = [p["to"] for p in emails if p["to"] in told and p.get("kind") == "payout.approved"]
        assert sorted(payout_mail) == sorted(told) != []  # (their lines' "approved" emails are another kind)
        session.commit()
        assert verify(session).ok


class TestSweep:
    def test_auto_approves_only_small_lines_of_partners_in_good_standing_past_hold(
        self, session: Session, clock: FixedClock
    ) -> None:
        start = clock.now()
        prog = factories.program(session, start, hold_days=30)
        policy(session, prog, start, auto_approve_below=5_000)
        ok = line(session, prog, start, 4_999, "Ok")
        big = line(session, prog, start, 5_000, "Big")
        suspended = line(session, prog, start, 100, "Susp")
        flagged = line(session, prog, start, 100, "Flag")
        owner = staff(session, "owner", "boss", start)
        adjustment = add_adjustment(
            session, actor=owner, partner_id=ok.partner_id, amount=100, currency="EUR", reason="goodwill", now=start
        )
        from partnerpay.partners.models import Partner

        partner = session.get(Partner, suspended.partner_id)
        assert partner is not None
        partner.status = PartnerStatus.SUSPENDED.value
        session.add(
            FraudFlag(
                id=new_id("flg"),
                program_id=prog.id,
                partner_id=flagged.partner_id,
                kind="ip_burst",
                detail="test",
                created_at=start,
                status="open",
            )
        )
        session.flush()
        assert sweep(session, start + timedelta(days=29)).auto_approved == {}  # all still on hold
        late = line(session, prog, start + timedelta(days=20), 10, "Late")  # its hold ends on day 50
        result = sweep(session, start + timedelta(days=31))
        assert result.auto_approved == {prog.id: [ok.id]}
        for pending in (big, suspended, flagged, adjustment, late):
            session.refresh(pending)
            assert pending.status == "pending", pending.id
        session.refresh(ok)
        assert (ok.status, ok.approved_by) == ("approved", "system")
        [row] = audit_rows(session, "commission.approve", ok.id)
        assert (
            row.actor_type == "system" and row.after and "auto-approved by the approval policy" in row.after["reason"]
        )
        assert sweep(session, start + timedelta(days=31)).auto_approved == {}

    def test_overdue_lines_are_reminded_once_per_line_per_day(self, session: Session, clock: FixedClock) -> None:
        start = clock.now()
        prog = factories.program(session, start)
        policy(session, prog, start, sla_days=2)
        staff(session, "finance", "fin", start)
        staff(session, "owner", "boss", start)
        staff(session, "manager", "man", start)  # not an approver under this policy: not emailed
        old = line(session, prog, start, 1_000)
        newer = line(session, prog, start + timedelta(days=2), 2_000)

        def emails() -> list[dict[str, Any]]:
            return list(session.scalars(select(OutboxJob.payload).where(OutboxJob.kind == "email.send")))

        assert sweep(session, start + timedelta(days=1)).reminders == []
        day3 = start + timedelta(days=2, hours=1)
        [reminder] = sweep(session, day3).reminders
        assert (reminder.lines, reminder.recipients) == (1, 2)
        sent = emails()
        assert sorted(e["to"] for e in sent) == ["boss@example.com", "fin@example.com"]
        assert old.id in sent[0]["text"] and newer.id not in sent[0]["text"]
        assert sweep(session, day3 + timedelta(hours=5)).reminders == []
        assert len(emails()) == 2
        day5 = start + timedelta(days=4, hours=2)
        [again] = sweep(session, day5).reminders
        assert again.lines == 2 and len(emails()) == 4
        decisions.approve_lines(session, actor=SYSTEM, ids=[old.id, newer.id], now=day5)
        assert sweep(session, day5 + timedelta(days=1)).reminders == []

    def test_the_sweep_is_a_registered_job_kind(self, session: Session, clock: FixedClock) -> None:
        from partnerpay.jobs.registry import JobContext, PermanentJobError

        registry = build_registry()
        handler = registry.get(SWEEP_JOB)
        prog = factories.program(session, clock.now())
        policy(session, prog, clock.now(), auto_approve_below=10_000)
        small = line(session, prog, clock.now(), 500)
        handler(session, {"program_id": prog.id}, JobContext("job_1", 1, clock.now()))
        assert small.status == LineStatus.APPROVED.value
        with pytest.raises(PermanentJobError):
            handler(session, {"program_id": "prg_nope"}, JobContext("job_2", 1, clock.now()))
        assert session.scalar(select(func.count()).select_from(CommissionLine)) == 1


class TestSweepCli:
    def test_partnerpay_approvals_sweep_auto_approves_and_names_a_missing_program(
        self, database_url: str, session: Session, clock: FixedClock
    ) -> None:
        from typer.testing import CliRunner

        from partnerpay.cli import app

        prog = factories.program(session, clock.now())
        policy(session, prog, clock.now(), auto_approve_below=10_000)
        small = line(session, prog, clock.now(), 500)
        session.commit()
        env = {"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": "s" * 40, "COLUMNS": "300"}
        cli = CliRunner(env=env)  # wide: whole ids in the table
        missing = cli.invoke(app, ["approvals", "sweep", "--program", "prg_nope"])
        assert missing.exit_code == 1 and "prg_nope" in missing.output
        done = cli.invoke(app, ["approvals", "sweep", "--program", prog.id])
        assert done.exit_code == 0, done.output
        assert prog.id in done.output
        session.expire_all()
        assert session.get(CommissionLine, small.id).status == "approved"  # type: ignore[union-attr]
        session.rollback()  # SQLite: the CLI's writer must not wait for this test's transaction
        again = cli.invoke(app, ["approvals", "sweep"])
        assert again.exit_code == 0 and "Nothing to do" in again.output, again.output


class TestScheduledSweep:
    def test_the_worker_scheduler_enqueues_one_sweep_per_hour(
        self, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        from partnerpay.approvals.auto import sweep_due
        from partnerpay.jobs.scheduler import PeriodicTask, Scheduler

        scheduler = Scheduler([PeriodicTask(SWEEP_JOB, sweep_due, every_seconds=0)])
        first = scheduler.run_due(session_factory, now=clock.now(), force=True)
        again = scheduler.run_due(session_factory, now=clock.now() + timedelta(minutes=30), force=True)
        next_hour = scheduler.run_due(session_factory, now=clock.now() + timedelta(hours=1), force=True)
        assert [slot for _, slot, _ in first] == [f"{clock.now():%Y-%m-%dT%H}"]
        assert again == [] and len(next_hour) == 1
        with session_factory() as s:
            kinds = s.scalars(select(OutboxJob.kind)).all()
        assert kinds == [SWEEP_JOB, SWEEP_JOB]
