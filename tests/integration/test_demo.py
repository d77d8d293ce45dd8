"""`partnerpay demo`: a realistic program written through the services, once; a second run changes nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner, Result

from partnerpay.approvals.policy import policies_for
from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.models import StaffUser
from partnerpay.auth.service import api_key_actor, authenticate_partner_user, authenticate_staff
from partnerpay.cli import app
from partnerpay.commissions.models import CommissionLine
from partnerpay.db.models import Base
from partnerpay.demo.data import (
    FINANCE_EMAIL,
    MANAGER_EMAIL,
    OWNER_EMAIL,
    PARTNER_EMAIL,
    PILOT_NAME,
    PROGRAM_NAME,
    QUESTION_KEY,
    RESELLERS_NAME,
)
from partnerpay.demo.story import tell
from partnerpay.events.models import Event
from partnerpay.partners.applications import application_queue
from partnerpay.partners.models import Partner, PartnerActivity, PartnerGroup, PartnerNote, PartnerStatus, Prospect
from partnerpay.partners.prospects import is_overdue
from partnerpay.payouts.models import BatchStatus, PayoutBatch
from partnerpay.payouts.service import create_payout_run
from partnerpay.programs.models import Program, ProgramTerms, TermsAcceptance

NOW = "2026-01-15T12:00:00Z"
SECRET = "s" * 40


@pytest.fixture
def cli(database_url: str) -> CliRunner:
    return CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": SECRET})


def demo(cli: CliRunner, *args: str) -> Result:
    return cli.invoke(app, ["demo", "--now", NOW, *args])


def row_counts(factory: sessionmaker[Session]) -> dict[str, int]:
    with factory() as s:
        return {t.name: int(s.scalar(select(func.count()).select_from(t)) or 0) for t in Base.metadata.sorted_tables}


class TestDemo:
    def test_running_it_twice_changes_nothing_and_the_books_tie_out(
        self, cli: CliRunner, session_factory: sessionmaker[Session]
    ) -> None:
        first = demo(cli)
        assert first.exit_code == 0, first.output
        before = row_counts(session_factory)

        second = demo(cli)

        assert second.exit_code == 0, second.output
        assert "nothing was changed" in second.stdout
        assert row_counts(session_factory) == before
        checked = cli.invoke(app, ["verify"])
        assert checked.exit_code == 0, checked.output

    def test_first_run_prints_logins_and_a_working_key_on_the_last_line(self, cli: CliRunner, session: Session) -> None:
        result = demo(cli)

        assert result.exit_code == 0, result.output
        for email in (OWNER_EMAIL, FINANCE_EMAIL, MANAGER_EMAIL, PARTNER_EMAIL):
            assert email in result.stdout
        key = result.stdout.strip().splitlines()[-1]
        actor = api_key_actor(session, key)
        program = session.scalar(select(Program).where(Program.name == PROGRAM_NAME))
        assert actor is not None and program is not None and actor.program_id == program.id

    def test_demo_users_log_in_with_the_documented_demo_password(self, cli: CliRunner, session: Session) -> None:
        assert demo(cli).exit_code == 0

        assert authenticate_staff(session, OWNER_EMAIL, "partnerpay-demo") is not None
        assert authenticate_staff(session, FINANCE_EMAIL, "partnerpay-demo") is not None
        assert authenticate_staff(session, MANAGER_EMAIL, "partnerpay-demo") is not None
        assert authenticate_partner_user(session, PARTNER_EMAIL, "partnerpay-demo") is not None

    def test_password_comes_from_the_environment_and_a_rerun_says_when_it_differs(
        self, cli: CliRunner, session: Session
    ) -> None:
        first = cli.invoke(app, ["demo", "--now", NOW], env={"PARTNERPAY_DEMO_PASSWORD": "another-demo-pass"})
        assert first.exit_code == 0, first.output
        assert authenticate_staff(session, OWNER_EMAIL, "another-demo-pass") is not None
        session.rollback()  # on SQLite an open transaction holds the lock the command needs

        again = demo(cli)

        assert again.exit_code == 0
        assert "not the password given now" in again.stdout

    def test_a_short_password_is_refused_before_anything_is_written(
        self, cli: CliRunner, session_factory: sessionmaker[Session]
    ) -> None:
        result = demo(cli, "--password", "short")

        assert result.exit_code == 1
        assert "password" in result.stderr
        assert sum(row_counts(session_factory).values()) == 0

    def test_history_has_paid_lines_clawbacks_and_work_left_to_do(self, cli: CliRunner, session: Session) -> None:
        assert demo(cli).exit_code == 0
        program = session.scalar(select(Program).where(Program.name == PROGRAM_NAME))
        assert program is not None
        assert (program.currency, program.hold_days, program.default_percent_bp) == ("EUR", 30, 2000)
        policy = policies_for(session, [program.id])[program.id]
        assert (policy.sla_days, policy.second_approval_above, policy.updated_at is not None) == (5, 100_000, True)

        partners = session.scalar(select(func.count()).select_from(Partner)) or 0
        by_status = dict(
            session.execute(select(CommissionLine.status, func.count()).group_by(CommissionLine.status)).all()
        )
        kinds = dict(session.execute(select(Event.type, func.count()).group_by(Event.type)).all())
        batches = session.scalars(select(PayoutBatch)).all()
        assert 20 <= partners <= 30
        assert by_status["paid"] > 0 and by_status["approved"] > 0 and by_status["pending"] > 0
        assert kinds["invoice_paid"] > 100 and 3 <= kinds["refund"] + kinds.get("chargeback", 0) <= 10
        assert [b.status for b in batches] == [BatchStatus.PAID.value]
        first_event = session.scalar(select(func.min(Event.occurred_at)))
        last_event = session.scalar(select(func.max(Event.occurred_at)))
        assert first_event is not None and last_event is not None
        assert (last_event - first_event).days >= 170
        assert last_event <= datetime(2026, 1, 15, 12, tzinfo=UTC)

        # The next run nets the clawbacks; the partner refunded after the payout carries a negative balance.
        run = create_payout_run(session, actor=SYSTEM, program_id=program.id, now=datetime(2026, 1, 15, 12, tzinfo=UTC))
        assert run.payouts
        assert [s["reason"] for s in run.skipped] == ["negative_balance_carried"]
        session.rollback()

    def test_onboarding_is_there_in_the_first_five_minutes(self, cli: CliRunner, session: Session) -> None:
        assert demo(cli).exit_code == 0
        program = session.scalar(select(Program).where(Program.name == PROGRAM_NAME))
        assert program is not None
        today = date(2026, 1, 15)
        partners = session.scalars(select(Partner).where(Partner.program_id == program.id)).all()
        active = [p for p in partners if p.status == PartnerStatus.ACTIVE.value]
        staff = {u.email: u.id for u in session.scalars(select(StaffUser))}

        # Owners: the owner and the manager share the active partners about half and half.
        owners = [p.owner_id for p in active]
        assert set(owners) == {staff[OWNER_EMAIL], staff[MANAGER_EMAIL]}
        assert abs(owners.count(staff[OWNER_EMAIL]) - owners.count(staff[MANAGER_EMAIL])) <= 2

        # Groups: a running pilot of five under its cap, and a plain group.
        groups = {g.name: g for g in session.scalars(select(PartnerGroup))}
        pilot, resellers = groups[PILOT_NAME], groups[RESELLERS_NAME]
        assert pilot.is_pilot and pilot.size_cap == 8
        assert pilot.starts_on is not None and pilot.ends_on is not None
        assert pilot.starts_on <= today <= pilot.ends_on
        assert sum(p.group_id == pilot.id for p in partners) == 5
        assert not resellers.is_pilot and sum(p.group_id == resellers.id for p in partners) == 3

        # Terms version 1, published before the history, accepted by every active partner; nobody missed a line.
        terms = session.scalars(select(ProgramTerms).where(ProgramTerms.program_id == program.id)).all()
        assert [t.version for t in terms] == [1]
        first_event = session.scalar(select(func.min(Event.occurred_at)))
        assert first_event is not None and terms[0].published_at < first_event
        accepted = set(
            session.scalars(select(TermsAcceptance.partner_id).where(TermsAcceptance.terms_id == terms[0].id))
        )
        assert {p.id for p in active} <= accepted
        assert session.scalar(select(PartnerActivity.id).where(PartnerActivity.kind == "terms.not_accepted")) is None

        # Three applications wait in the queue, one answering the form's own question; the manager owns them.
        queue = application_queue(session, SYSTEM, program_id=program.id).data
        assert len(queue) == 3
        assert {p.owner_id for p in queue} == {staff[MANAGER_EMAIL]}
        answered = [
            a
            for p in queue
            for a in (p.application or {}).get("answers", [])
            if a["key"] == QUESTION_KEY and a["answer"]
        ]
        assert len(answered) == 1

        # The pipeline: four prospects in different stages with next steps, exactly one overdue.
        prospects = session.scalars(select(Prospect).where(Prospect.program_id == program.id)).all()
        assert len(prospects) == 4 and len({p.stage for p in prospects}) == 4
        assert all(p.next_step and p.due_on for p in prospects)
        assert sum(is_overdue(p, today) for p in prospects) == 1

        # Staff notes and a timeline written by the services.
        assert (session.scalar(select(func.count()).select_from(PartnerNote)) or 0) >= 2
        kinds = set(session.scalars(select(PartnerActivity.kind)))
        assert {"owner.assigned", "terms.accepted", "group.moved", "note.added", "application"} <= kinds


class TestStory:
    def test_the_same_now_and_seed_tell_the_same_story(self) -> None:
        now = datetime(2026, 1, 15, 12, tzinfo=UTC)
        assert tell(now, 7) == tell(now, 7)
        assert tell(now, 7) != tell(now, 8)

    def test_every_event_happens_by_now_and_steps_are_in_order(self) -> None:
        now = datetime(2026, 1, 15, 12, tzinfo=UTC)
        story = tell(now, 2026)
        times = [a.at for step in story.steps for a in step.actions]
        assert times == sorted(times)
        assert max(times) <= now and min(times) > story.setup_at


class TestDemoTracking:
    def test_it_shows_links_clicks_coupons_a_lead_conflict_a_won_deal_and_an_open_update_request(
        self, cli: CliRunner, session_factory: sessionmaker[Session]
    ) -> None:
        from partnerpay.deals.models import Deal, Lead, UpdateRequest
        from partnerpay.partners.models import PartnerUser
        from partnerpay.tracking.models import Click, Coupon, ReferralLink

        assert demo(cli).exit_code == 0
        with session_factory() as s:
            portal_partner = s.scalar(select(PartnerUser.partner_id).where(PartnerUser.email == PARTNER_EMAIL))
            links = s.scalars(select(ReferralLink)).all()
            assert portal_partner in {link.partner_id for link in links}
            clicks = s.scalars(select(Click)).all()
            # Every click is a partner's, on its default code or one of its links, in the last 30 days.
            by_link = {link.id: link for link in links}
            assert len(clicks) > 500
            assert all(c.link_id is None or by_link[c.link_id].partner_id == c.partner_id for c in clicks)
            assert s.scalar(select(func.count()).select_from(Coupon)) == len(links)
            conflicted = [lead for lead in s.scalars(select(Lead)) if lead.conflicts]
            assert [c["kind"] for lead in conflicted for c in lead.conflicts or []] == ["other_partner_lead"]
            won = s.scalars(select(Deal).where(Deal.status == "won")).all()
            assert len(won) == 1 and won[0].event_id is not None and won[0].amount == 1_080_000
            requests = s.scalars(select(UpdateRequest).where(UpdateRequest.partner_id == portal_partner)).all()
            assert sorted(r.answered_at is None for r in requests) == [False, True]  # one answered, one open
