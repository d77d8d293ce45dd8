"""Smart alerts on realistic data: each rule kind fires when it should and not otherwise; dedupe per period,
snooze, acknowledge, recipients (owner, else the team), the digest email and the alert.raised webhook."""

from __future__ import annotations

from datetime import datetime, timedelta
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.alerts import raising, service
from partnerpay.alerts.models import Alert, AlertStatus
from partnerpay.alerts.rules import create_rule, update_rule
from partnerpay.alerts.spikes import average_text, is_spike
from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.models import StaffUser
from partnerpay.commissions.decisions import approve_lines
from partnerpay.deals.leads import accept_leads, register_lead
from partnerpay.deals.service import move_deal
from partnerpay.events.schemas import EventType
from partnerpay.inbox.models import InboxItem, ProgramIntegration
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.models import OutboxJob
from partnerpay.jobs.scheduler import default_scheduler
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import InvalidTransition, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.partners.models import Partner
from partnerpay.payouts.models import Payout
from partnerpay.payouts.reconcile import RailResult, record_results
from partnerpay.payouts.service import approve_batch, create_payout_run
from partnerpay.programs.models import Program
from partnerpay.tracking.attribution_models import FraudFlag
from partnerpay.tracking.models import Click
from partnerpay.webhooks_out.models import WebhookEvent
from partnerpay.webhooks_out.subscriptions import create_subscription
from tests import factories

DAY = timedelta(days=1)


def staff(session: Session, role: str, name: str, now: datetime) -> StaffUser:
    user = StaffUser(id=new_id("usr"), email=f"{name}@example.com", role=role, password_hash="-", created_at=now)
    session.add(user)
    session.flush()
    return user


def owned_partner(session: Session, prog: Program, now: datetime, name: str, owner: StaffUser | None) -> Partner:
    partner = factories.partner(session, prog, now, f"{name} {prog.id}")
    partner.owner_id = owner.id if owner else None
    session.flush()
    return partner


def rule(session: Session, prog: Program, kind: str, now: datetime, **params: object) -> str:
    return create_rule(session, actor=SYSTEM, program_id=prog.id, kind=kind, params=params, now=now).id


def evaluate(session: Session, now: datetime) -> list[Alert]:
    return raising.evaluate(session, now)


def emails_to(session: Session) -> list[tuple[str, str]]:
    jobs = session.scalars(select(OutboxJob).where(OutboxJob.kind == "email.send").order_by(OutboxJob.created_at))
    return [(j.payload["to"], j.payload["subject"]) for j in jobs]


class TestSpikeArithmetic:
    @given(
        today=st.integers(0, 10**6),
        trailing=st.integers(0, 10**8),
        factor=st.integers(101, 10**5),
        minimum=st.integers(1, 10**4),
        days=st.integers(1, 60),
    )
    def test_integer_test_matches_exact_fractions(
        self, today: int, trailing: int, factor: int, minimum: int, days: int
    ) -> None:
        exact = Fraction(today) > Fraction(trailing, days) * Fraction(factor, 100)
        assert is_spike(today, trailing, factor_pct=factor, min_count=minimum, days=days) == (
            today >= minimum and exact
        )

    @given(trailing=st.integers(0, 10**8), days=st.integers(1, 60))
    def test_average_text_is_the_average_to_one_decimal(self, trailing: int, days: int) -> None:
        whole, tenth = average_text(trailing, days).split(".")
        shown = Fraction(int(whole) * 10 + int(tenth), 10)
        assert abs(shown - Fraction(trailing, days)) <= Fraction(1, 20)

    def test_negative_counts_are_refused(self) -> None:
        with pytest.raises(ValueError):
            is_spike(-1, 0, factor_pct=300, min_count=1)


class TestRuleKinds:
    def test_approvals_overdue_daily_per_partner_to_its_owner(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        ana, team = staff(session, "manager", "ana", clock.now()), staff(session, "owner", "boss", clock.now())
        late = owned_partner(session, prog, clock.now(), "Late", ana)
        factories.event(session, prog, clock.now(), external_id="i1", customer="c1", amount=10_000, partner_id=late.id)
        rule(session, prog, "approvals_overdue", clock.now(), days=5)
        clock.advance(6 * DAY)
        fresh = owned_partner(session, prog, clock.now(), "Fresh", None)
        factories.event(session, prog, clock.now(), external_id="i2", customer="c2", amount=10_000, partner_id=fresh.id)
        [alert] = evaluate(session, clock.now())
        assert (alert.subject_type, alert.subject_id, alert.partner_id) == ("partner", late.id, late.id)
        assert alert.owner_id == ana.id and alert.notified == ["ana@example.com"]
        assert "1 commission line(s)" in alert.title and "€20.00" in alert.detail
        assert evaluate(session, clock.now() + timedelta(hours=3)) == []  # same day: raised once
        clock.advance(DAY)
        [again] = evaluate(session, clock.now())
        assert again.period == clock.now().date().isoformat()
        assert team.email not in again.notified

    def test_approvals_overdue_uses_the_sla_and_does_nothing_without_one(
        self, session: Session, clock: FixedClock
    ) -> None:
        from partnerpay.approvals import policy

        prog = factories.program(session, clock.now())
        partner = owned_partner(session, prog, clock.now(), "P", None)
        factories.event(
            session, prog, clock.now(), external_id="i1", customer="c1", amount=10_000, partner_id=partner.id
        )
        rule(session, prog, "approvals_overdue", clock.now())
        clock.advance(10 * DAY)
        assert evaluate(session, clock.now()) == []
        policy.put_policy(session, actor=SYSTEM, program_id=prog.id, raw={"sla_days": 7}, now=clock.now())
        assert len(evaluate(session, clock.now())) == 1

    def test_deal_stale_once_per_episode(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        owner = staff(session, "manager", "olga", clock.now())
        partner = owned_partner(session, prog, clock.now(), "Dealer", owner)
        deals = []
        for company in ("Quiet Corp", "Busy Corp"):
            lead = register_lead(
                session, actor=SYSTEM, program_id=prog.id, partner_id=partner.id, company=company, now=clock.now()
            )
            deals += accept_leads(session, actor=SYSTEM, lead_ids=[lead.id], now=clock.now())
        quiet, busy = deals
        rule(session, prog, "deal_stale", clock.now(), days=14)
        clock.advance(10 * DAY)
        move_deal(session, actor=SYSTEM, deal_id=busy.id, stage="demo", now=clock.now())
        clock.advance(5 * DAY)
        [alert] = evaluate(session, clock.now())
        assert alert.subject_id == quiet.id and "Quiet Corp" in alert.title and alert.notified == ["olga@example.com"]
        clock.advance(3 * DAY)
        assert [a.subject_id for a in evaluate(session, clock.now())] == []  # busy: 8 days; quiet: same episode
        move_deal(session, actor=SYSTEM, deal_id=quiet.id, stage="demo", now=clock.now())
        clock.advance(15 * DAY)
        assert sorted(a.subject_id for a in evaluate(session, clock.now())) == sorted([quiet.id, busy.id])

    def test_partner_inactive(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        idle = owned_partner(session, prog, clock.now(), "Idle", None)
        busy = owned_partner(session, prog, clock.now(), "Busy", None)
        clicker = owned_partner(session, prog, clock.now(), "Clicker", None)
        team = staff(session, "manager", "team", clock.now())
        rule(session, prog, "partner_inactive", clock.now(), days=30)
        clock.advance(25 * DAY)
        factories.event(session, prog, clock.now(), external_id="s1", customer="c1", amount=None,
                        type=EventType.SIGNUP, partner_id=busy.id)  # fmt: skip
        session.add(Click(id=new_id("clk"), program_id=prog.id, partner_id=clicker.id, code="x", at=clock.now(),
                          destination="https://example.com"))  # fmt: skip
        clock.advance(6 * DAY)
        [alert] = evaluate(session, clock.now())
        assert alert.subject_id == idle.id and alert.period == "never"
        assert alert.notified == [team.email]  # no owner: the team

    def test_payout_failed_and_returned_not_paid(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        ids = []
        for n in range(3):
            p = owned_partner(session, prog, clock.now(), f"P{n}", None)
            ids += [line.id for line in factories.event(session, prog, clock.now(), external_id=f"i{n}",
                                                        customer=f"c{n}", amount=10_000, partner_id=p.id)]  # fmt: skip
        approve_lines(session, actor=SYSTEM, ids=ids, now=clock.now())
        run = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=clock.now())
        assert run.batch is not None
        approve_batch(session, actor=SYSTEM, batch_id=run.batch.id, now=clock.now())
        rule(session, prog, "payout_failed", clock.now())
        paid, failed, returned = session.scalars(select(Payout).order_by(Payout.id)).all()
        record_results(session, actor=SYSTEM, now=clock.now(), results=[
            RailResult(paid.id, "paid"), RailResult(failed.id, "failed", reason="AC04 account closed"),
            RailResult(returned.id, "paid")])  # fmt: skip
        record_results(session, actor=SYSTEM, now=clock.now(), results=[RailResult(returned.id, "returned")])
        alerts = {a.subject_id: a for a in evaluate(session, clock.now())}
        assert set(alerts) == {failed.id, returned.id}
        assert "AC04 account closed" in alerts[failed.id].detail and alerts[returned.id].period == "returned"

    def test_click_spike_against_the_trailing_average(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        spiky, steady, tiny = (owned_partner(session, prog, clock.now(), n, None) for n in ("Spiky", "Steady", "Tiny"))
        start = clock.now() - 28 * DAY

        def clicks(partner: Partner, per_day: int, today: int) -> None:
            for day in range(28):
                for n in range(per_day):
                    session.add(Click(id=new_id("clk"), program_id=prog.id, partner_id=partner.id, code="c",
                                      at=start + day * DAY + n * timedelta(minutes=1),
                                      destination="https://example.com"))  # fmt: skip
            for n in range(today):
                session.add(Click(id=new_id("clk"), program_id=prog.id, partner_id=partner.id, code="c",
                                  at=clock.now() - timedelta(hours=2) + n * timedelta(seconds=10),
                                  destination="https://example.com"))  # fmt: skip

        clicks(spiky, 2, 25)  # 25 today against 2 a day
        clicks(steady, 30, 40)  # 40 against 30 a day: not three times
        clicks(tiny, 0, 10)  # from nothing, but under the minimum of 20
        session.flush()
        rule(session, prog, "spike", clock.now(), metric="clicks", factor_pct=300, min_count=20)
        [alert] = evaluate(session, clock.now())
        assert alert.subject_id == spiky.id
        assert alert.data == {"metric": "clicks", "today": 25, "trailing_total": 56, "trailing_days": 28}
        assert "average of 2.0 a day" in alert.detail

    def test_refund_spike(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        partner = owned_partner(session, prog, clock.now(), "Refunds", None)
        for n in range(4):
            factories.event(session, prog, clock.now() - 40 * DAY, external_id=f"i{n}", customer=f"c{n}",
                            amount=10_000, partner_id=partner.id, occurred_at=clock.now() - 40 * DAY)  # fmt: skip
            factories.event(session, prog, clock.now(), external_id=f"r{n}", customer=f"c{n}", amount=10_000,
                            type=EventType.REFUND, original_external_id=f"i{n}",
                            occurred_at=clock.now() - timedelta(hours=1))  # fmt: skip
        rule(session, prog, "spike", clock.now(), metric="refunds")
        [alert] = evaluate(session, clock.now())
        assert alert.data["metric"] == "refunds" and alert.data["today"] == 4

    def test_open_fraud_flags(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        partner = owned_partner(session, prog, clock.now(), "Flagged", None)
        flags = [
            FraudFlag(id=new_id("flg"), program_id=prog.id, partner_id=partner.id, kind="ip_burst",
                      detail="40 clicks from one address in an hour.", created_at=clock.now(), status=status)
            for status in ("open", "dismissed")
        ]  # fmt: skip
        session.add_all(flags)
        session.flush()
        rule(session, prog, "fraud_flag", clock.now())
        [alert] = evaluate(session, clock.now())
        assert alert.subject_id == flags[0].id and "ip burst" in alert.title

    def test_integration_silent(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        for provider, last in (("stripe", 30), ("shopify", 1)):
            session.add(ProgramIntegration(id=new_id("itg"), program_id=prog.id, provider=provider, sealed="-",
                                           config={}, created_at=clock.now() - 10 * DAY,
                                           updated_at=clock.now() - 10 * DAY))  # fmt: skip
            session.add(InboxItem(id=new_id("inb"), program_id=prog.id, source=f"{provider}:{prog.id}",
                                  provider=provider, external_id=f"evt-{provider}", kind="invoice.paid", body="{}",
                                  headers={}, received_at=clock.now() - timedelta(hours=last),
                                  status="processed"))  # fmt: skip
        session.add(
            ProgramIntegration(
                id=new_id("itg"),
                program_id=prog.id,
                provider="hubspot",
                sealed="-",
                config={},
                created_at=clock.now() - timedelta(hours=2),
                updated_at=clock.now(),
            )
        )  # fmt: skip  (new: not silent yet)
        session.flush()
        rule(session, prog, "integration_silent", clock.now(), hours=24)
        [alert] = evaluate(session, clock.now())
        assert alert.subject_type == "integration" and alert.data["provider"] == "stripe"
        assert evaluate(session, clock.now() + timedelta(minutes=50)) == []  # same silence, same alert


class TestLifecycle:
    def _overdue(self, session: Session, clock: FixedClock) -> tuple[Program, Partner]:
        prog = factories.program(session, clock.now())
        partner = owned_partner(session, prog, clock.now(), "Late", staff(session, "manager", "ana", clock.now()))
        factories.event(
            session, prog, clock.now(), external_id="i1", customer="c1", amount=10_000, partner_id=partner.id
        )
        rule(session, prog, "approvals_overdue", clock.now(), days=1)
        clock.advance(2 * DAY)
        return prog, partner

    def test_snoozed_alerts_do_not_renotify_until_the_snooze_ends(self, session: Session, clock: FixedClock) -> None:
        self._overdue(session, clock)
        [alert] = evaluate(session, clock.now())
        service.snooze(session, actor=SYSTEM, alert_id=alert.id, until=(clock.now() + 3 * DAY).date().isoformat(),
                       now=clock.now())  # fmt: skip
        for _ in range(2):
            clock.advance(DAY)
            assert evaluate(session, clock.now()) == []
        clock.advance(DAY)
        assert len(evaluate(session, clock.now())) == 1
        actions = session.scalars(select(AuditEntry.action).where(AuditEntry.object_id == alert.id)).all()
        assert sorted(actions) == ["alert.raise", "alert.snooze"]

    def test_snooze_until_must_be_future_and_within_a_year(self, session: Session, clock: FixedClock) -> None:
        self._overdue(session, clock)
        [alert] = evaluate(session, clock.now())
        for bad in ("2020-01-01", "tomorrow", (clock.now() + 400 * DAY).isoformat(), "2026-02-01T10:00:00"):
            with pytest.raises(ValidationError) as caught:
                service.snooze(session, actor=SYSTEM, alert_id=alert.id, until=bad, now=clock.now())
            assert caught.value.field == "until"

    def test_acknowledge_records_who_and_when_once(self, session: Session, clock: FixedClock) -> None:
        self._overdue(session, clock)
        [alert] = evaluate(session, clock.now())
        done = service.acknowledge(session, actor=SYSTEM, alert_id=alert.id, now=clock.now())
        assert (done.status, done.acknowledged_by, done.acknowledged_at) == (
            AlertStatus.ACKNOWLEDGED,
            "system",
            clock.now(),
        )
        with pytest.raises(InvalidTransition):
            service.acknowledge(session, actor=SYSTEM, alert_id=alert.id, now=clock.now())
        assert service.open_count(session, SYSTEM, clock.now()) == 0

    def test_digest_email_and_webhook(self, session: Session, clock: FixedClock) -> None:
        from partnerpay.settings import Settings

        prog, partner = self._overdue(session, clock)
        box = Settings(secret_key="a" * 40).secret_box()
        create_subscription(session, actor=SYSTEM, box=box, program_id=prog.id, url="https://hooks.example.com/x",
                            event_types=["alert.raised"], now=clock.now())  # fmt: skip
        rule_id = rule(session, prog, "partner_inactive", clock.now(), days=1)
        update_rule(session, actor=SYSTEM, rule_id=rule_id, now=clock.now(),
                    changes={"recipients": {"owner": True, "emails": ["ops@example.com"]}})  # fmt: skip
        alerts = evaluate(session, clock.now())
        assert len(alerts) == 2
        sent = emails_to(session)
        assert sorted(to for to, _ in sent) == ["ana@example.com", "ops@example.com"]
        assert dict(sent)["ana@example.com"] == f"{prog.name}: 2 new alerts"
        events = session.scalars(select(WebhookEvent).where(WebhookEvent.type == "alert.raised")).all()
        assert sorted(e.body.count(partner.id) > 0 for e in events) == [True, True]

    def test_disabled_rules_are_not_evaluated(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        owned_partner(session, prog, clock.now(), "Idle", None)
        rule_id = rule(session, prog, "partner_inactive", clock.now(), days=1)
        update_rule(session, actor=SYSTEM, rule_id=rule_id, changes={"enabled": False}, now=clock.now())
        clock.advance(2 * DAY)
        assert evaluate(session, clock.now()) == []

    def test_bad_rules_name_the_field(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        cases = [
            ({"kind": "weather"}, "kind"),
            ({"kind": "deal_stale", "params": {"days": 0}}, "params.days"),
            ({"kind": "deal_stale", "params": {"days": 1.5}}, "params.days"),
            ({"kind": "spike", "params": {"metric": "sales"}}, "params.metric"),
            ({"kind": "spike", "params": {"hours": 3}}, "params.hours"),
            ({"kind": "fraud_flag", "recipients": {"emails": ["not-an-email"]}}, "recipients.emails"),
            ({"kind": "fraud_flag", "recipients": {"team_roles": ["janitor"]}}, "recipients.team_roles"),
        ]
        for body, field in cases:
            with pytest.raises(ValidationError) as caught:
                create_rule(session, actor=SYSTEM, program_id=prog.id, now=clock.now(), **body)  # type: ignore[arg-type]
            assert caught.value.field == field

    def test_the_scheduler_runs_the_evaluation_once_an_hour(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        self._overdue(session, clock)
        session.commit()
        scheduler = default_scheduler()
        first = scheduler.run_due(session_factory, now=clock.now(), force=True)
        again = scheduler.run_due(session_factory, now=clock.now(), force=True)
        assert [t for t, *_ in first].count("alerts.evaluate") == 1
        assert [t for t, *_ in again].count("alerts.evaluate") == 0
        Worker(session_factory, build_registry(), clock=clock).run_pending()
        session.expire_all()
        assert len(session.scalars(select(Alert)).all()) == 1


class TestCli:
    def test_evaluate_now_then_nothing_new(self, database_url: str, session: Session, clock: FixedClock) -> None:
        from typer.testing import CliRunner

        from partnerpay.cli import app

        prog = factories.program(session, clock.now())
        owned_partner(session, prog, clock.now(), "Idle", None)
        rule(session, prog, "partner_inactive", clock.now(), days=1)  # the CLI's clock is the real one: months later
        session.commit()
        cli = CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": "c" * 40})
        first = cli.invoke(app, ["alerts", "evaluate", "--program", prog.id])
        assert first.exit_code == 0, first.output
        assert "1 alert(s) raised" in first.output and "partner_inactive" in first.output
        again = cli.invoke(app, ["alerts", "evaluate"])
        assert again.exit_code == 0 and "No new alert" in again.output
        unknown = cli.invoke(app, ["alerts", "evaluate", "--program", "prg_nope"])
        assert unknown.exit_code == 1 and "prg_nope" in unknown.output
