"""Ask for an update: emails through the outbox, the partner's answer on the timeline, reminders and their limits."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.deals.leads import accept_leads, register_lead
from partnerpay.deals.models import Deal, DealActivity, Lead, UpdateRequest
from partnerpay.deals.updates import REMIND_JOB, answer_update_request, ask_for_update, remind_unanswered
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.models import OutboxJob
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import Forbidden, InvalidTransition, NotFound, ValidationError
from partnerpay.partners.models import Partner
from partnerpay.partners.service import add_partner_user
from partnerpay.programs.models import Program
from tests import factories
from tests.integration.test_deals_leads import STAFF, as_partner


def emails_to(session: Session, address: str) -> list[OutboxJob]:
    jobs = session.scalars(select(OutboxJob).where(OutboxJob.kind == "email.send").order_by(OutboxJob.id)).all()
    return [j for j in jobs if j.payload["to"] == address]


@pytest.fixture
def world(session: Session, clock: FixedClock) -> tuple[Program, Partner, Partner, Lead]:
    prog = factories.program(session, clock.now())
    acme = factories.partner(session, prog, clock.now(), "Acme Media")
    beta = factories.partner(session, prog, clock.now(), "Beta Blog")
    add_partner_user(session, actor=SYSTEM, partner_id=acme.id, email="jo@acme.example", password="x" * 12,
                     now=clock.now())  # fmt: skip
    item = register_lead(session, actor=as_partner(acme), program_id=prog.id, company="Globex", domain="globex.com",
                         now=clock.now())  # fmt: skip
    return prog, acme, beta, item


class TestAskAndAnswer:
    def test_asking_emails_the_partners_logins_and_schedules_a_reminder(
        self, session: Session, world: tuple[Program, Partner, Partner, Lead], clock: FixedClock
    ) -> None:
        prog, _acme, _beta, item = world
        req = ask_for_update(session, actor=STAFF, lead_id=item.id, message="Did the demo happen?", now=clock.now())
        (mail,) = emails_to(session, "jo@acme.example")
        assert "Did the demo happen?" in mail.payload["text"] and "Globex" in mail.payload["subject"]
        (job,) = session.scalars(select(OutboxJob).where(OutboxJob.kind == REMIND_JOB)).all()
        assert job.run_after == clock.now() + timedelta(days=prog.update_reminder_days) == req.next_reminder_at

    def test_the_answer_goes_on_the_timeline_and_moves_the_last_update(
        self, session: Session, world: tuple[Program, Partner, Partner, Lead], clock: FixedClock
    ) -> None:
        _prog, acme, _beta, item = world
        (deal,) = accept_leads(session, actor=STAFF, lead_ids=[item.id], now=clock.now())
        req = ask_for_update(session, actor=STAFF, deal_id=deal.id, message="Any news?", now=clock.now())
        assert req.lead_id == item.id
        clock.advance(timedelta(days=1))
        answer_update_request(session, actor=as_partner(acme), request_id=req.id, answer="Demo on Friday",
                              now=clock.now())  # fmt: skip
        assert (req.answer, req.answered_at, req.next_reminder_at) == ("Demo on Friday", clock.now(), None)
        session.refresh(deal)
        session.refresh(item)
        assert deal.last_update_at == clock.now() == item.last_update_at
        texts = session.scalars(select(DealActivity.text).where(DealActivity.deal_id == deal.id)).all()
        assert "Partner's update: Demo on Friday" in texts
        with pytest.raises(InvalidTransition):
            answer_update_request(session, actor=as_partner(acme), request_id=req.id, answer="again", now=clock.now())

    def test_another_partner_cannot_see_or_answer_the_request(
        self, session: Session, world: tuple[Program, Partner, Partner, Lead], clock: FixedClock
    ) -> None:
        _prog, _acme, beta, item = world
        req = ask_for_update(session, actor=STAFF, lead_id=item.id, message="News?", now=clock.now())
        with pytest.raises(NotFound):
            answer_update_request(session, actor=as_partner(beta), request_id=req.id, answer="hi", now=clock.now())

    def test_an_empty_answer_or_message_names_its_field_and_staff_do_not_answer(
        self, session: Session, world: tuple[Program, Partner, Partner, Lead], clock: FixedClock
    ) -> None:
        _prog, acme, _beta, item = world
        with pytest.raises(ValidationError) as err:
            ask_for_update(session, actor=STAFF, lead_id=item.id, message="  ", now=clock.now())
        assert err.value.field == "message"
        req = ask_for_update(session, actor=STAFF, lead_id=item.id, message="News?", now=clock.now())
        with pytest.raises(ValidationError) as err:
            answer_update_request(session, actor=as_partner(acme), request_id=req.id, answer="", now=clock.now())
        assert err.value.field == "answer"
        with pytest.raises(Forbidden):
            answer_update_request(session, actor=STAFF, request_id=req.id, answer="x", now=clock.now())


class TestReminders:
    def _ask(self, factory: sessionmaker[Session], lead_id: str, clock: FixedClock) -> str:
        with factory() as s:
            req = ask_for_update(s, actor=STAFF, lead_id=lead_id, message="News?", now=clock.now())
            s.commit()
            return req.id

    def test_an_unanswered_request_is_reminded_three_times_then_never_again(
        self, session: Session, session_factory: sessionmaker[Session],
        world: tuple[Program, Partner, Partner, Lead], clock: FixedClock,
    ) -> None:  # fmt: skip
        session.commit()
        request_id = self._ask(session_factory, world[3].id, clock)
        worker = Worker(session_factory, build_registry(), clock=clock)
        worker.run_pending()
        for _ in range(5):
            clock.advance(timedelta(days=3))
            worker.run_pending()
        with session_factory() as s:
            req = s.get(UpdateRequest, request_id)
            assert req is not None and req.reminders_sent == 3 and req.next_reminder_at is None
            assert len(emails_to(s, "jo@acme.example")) == 4  # the ask and three reminders
            assert len(s.scalars(select(OutboxJob).where(OutboxJob.kind == REMIND_JOB)).all()) == 3

    def test_a_reminder_not_yet_due_sends_nothing(
        self, session: Session, session_factory: sessionmaker[Session],
        world: tuple[Program, Partner, Partner, Lead], clock: FixedClock,
    ) -> None:  # fmt: skip
        session.commit()
        self._ask(session_factory, world[3].id, clock)
        clock.advance(timedelta(days=3) - timedelta(seconds=1))
        Worker(session_factory, build_registry(), clock=clock).run_pending()
        with session_factory() as s:
            assert len(emails_to(s, "jo@acme.example")) == 1

    def test_an_answer_before_the_reminder_stops_it(
        self, session: Session, session_factory: sessionmaker[Session],
        world: tuple[Program, Partner, Partner, Lead], clock: FixedClock,
    ) -> None:  # fmt: skip
        session.commit()
        request_id = self._ask(session_factory, world[3].id, clock)
        with session_factory() as s:
            answer_update_request(s, actor=as_partner(world[1]), request_id=request_id, answer="Signed!",
                                  now=clock.now())  # fmt: skip
            s.commit()
        clock.advance(timedelta(days=10))
        Worker(session_factory, build_registry(), clock=clock).run_pending()
        with session_factory() as s:
            req = s.get(UpdateRequest, request_id)
            assert req is not None and req.reminders_sent == 0
            assert len(emails_to(s, "jo@acme.example")) == 1
            done = s.scalars(select(OutboxJob.status).where(OutboxJob.kind == REMIND_JOB)).all()
            assert done == ["done"]

    def test_the_sweep_catches_up_and_the_late_job_then_does_nothing(
        self, session: Session, session_factory: sessionmaker[Session],
        world: tuple[Program, Partner, Partner, Lead], clock: FixedClock,
    ) -> None:  # fmt: skip
        session.commit()
        request_id = self._ask(session_factory, world[3].id, clock)
        clock.advance(timedelta(days=4))
        with session_factory() as s:
            assert remind_unanswered(s, now=clock.now()) == 1
            assert remind_unanswered(s, now=clock.now()) == 0
            s.commit()
        Worker(session_factory, build_registry(), clock=clock).run_pending()
        with session_factory() as s:
            req = s.get(UpdateRequest, request_id)
            assert req is not None and req.reminders_sent == 1
            assert req.next_reminder_at == clock.now() + timedelta(days=3)
            assert len(emails_to(s, "jo@acme.example")) == 2


def test_a_deal_found_by_lead_is_where_the_request_lands(
    session: Session, world: tuple[Program, Partner, Partner, Lead], clock: FixedClock
) -> None:
    item = world[3]
    (deal,) = accept_leads(session, actor=STAFF, lead_ids=[item.id], now=clock.now())
    req = ask_for_update(session, actor=STAFF, lead_id=item.id, message="News?", now=clock.now())
    assert (req.deal_id, req.lead_id) == (deal.id, item.id)
    assert session.get(Deal, deal.id) is deal


def test_the_cli_sends_due_reminders_once(
    session: Session, session_factory: sessionmaker[Session], world: tuple[Program, Partner, Partner, Lead],
    clock: FixedClock, database_url: str,
) -> None:  # fmt: skip
    from typer.testing import CliRunner

    from partnerpay.cli import app

    session.commit()
    with session_factory() as s:
        ask_for_update(s, actor=STAFF, lead_id=world[3].id, message="News?", now=clock.now())
        s.commit()
    runner = CliRunner(env={"PARTNERPAY_DATABASE_URL": database_url, "PARTNERPAY_SECRET_KEY": "s" * 40})
    at = (clock.now() + timedelta(days=3)).isoformat()
    first = runner.invoke(app, ["deals", "remind", "--at", at])
    assert first.exit_code == 0 and "1 reminder(s) sent." in first.output
    again = runner.invoke(app, ["deals", "remind", "--at", at])
    assert again.exit_code == 0 and "No reminder is due." in again.output
    bad = runner.invoke(app, ["deals", "remind", "--at", "yesterday"])
    assert bad.exit_code == 1


def test_the_staff_member_who_asked_is_emailed_the_answer(
    session: Session, world: tuple[Program, Partner, Partner, Lead], clock: FixedClock
) -> None:
    from partnerpay.auth.service import create_staff_user, staff_actor

    user = create_staff_user(session, actor=SYSTEM, email="pm@example.com", role="manager", password="x" * 12,
                             now=clock.now())  # fmt: skip
    item = world[3]
    req = ask_for_update(session, actor=staff_actor(user), lead_id=item.id, message="News?", now=clock.now())
    assert emails_to(session, "pm@example.com") == []
    answer_update_request(session, actor=as_partner(world[1]), request_id=req.id, answer="Signed", now=clock.now())
    (mail,) = emails_to(session, "pm@example.com")
    assert "Acme Media answered" in mail.payload["text"] and f"/deals/leads/{item.id}" in mail.payload["text"]
