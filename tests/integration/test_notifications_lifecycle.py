"""Every partner-facing notification of a full lifecycle reaches a real SMTP server (aiosmtpd) exactly once,
through the outbox and the worker; a server that answers 4xx delays mail and never loses or doubles it."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM, Actor, ActorType
from partnerpay.auth.service import create_staff_user, staff_actor
from partnerpay.commissions.decisions import approve_lines
from partnerpay.commissions.models import CommissionLine
from partnerpay.deals.leads import register_lead
from partnerpay.deals.updates import ask_for_update
from partnerpay.integrations.smtp import Email
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.models import JobStatus, OutboxJob
from partnerpay.jobs.outbox import enqueue
from partnerpay.jobs.registry import Registry
from partnerpay.jobs.scheduler import PeriodicTask, Scheduler
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import FixedClock
from partnerpay.messaging.announcements import announce
from partnerpay.messaging.email import EMAIL_SEND, email_handler, enqueue_email
from partnerpay.messaging.line_notices import hold_notices_due
from partnerpay.messaging.threads import post_message
from partnerpay.partners.applications import approve_applications, submit_application
from partnerpay.partners.invitations import invite_partner
from partnerpay.partners.models import Partner, PayoutMethod
from partnerpay.partners.payout_details import set_payout_method
from partnerpay.payouts.funding import put_funding_account
from partnerpay.payouts.models import Payout
from partnerpay.payouts.reconcile import RailResult, record_results
from partnerpay.payouts.run import create_payout_run
from partnerpay.payouts.sending import start_send
from partnerpay.payouts.service import approve_batch
from partnerpay.programs.models import Program
from partnerpay.settings import Settings
from tests import factories
from tests.integration.sending_helpers import SEPA_FUNDING
from tests.integration.test_smtp import free_port

SECRET = "lifecycle-secret-key-" + "x" * 30
ADA = "ada@adamedia.example"
BEN = "ben@benblog.example"


@dataclass
class FlakyInbox:
    """Keeps what it receives; answers 451 (try again later) to the first delivery attempt of the first
    `refuse` messages it sees, as a greylisting or overloaded server does."""

    refuse: int = 0
    messages: list[EmailMessage] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = message_from_bytes(envelope.content, policy=default)
        assert isinstance(message, EmailMessage)
        if len(self.refused) < self.refuse and message["Message-ID"] not in self.refused:
            self.refused.append(message["Message-ID"])
            return "451 4.3.0 temporary failure, try again later"
        self.messages.append(message)
        return "250 Message accepted for delivery"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]


@pytest.fixture
def smtp() -> Iterator[tuple[FlakyInbox, int]]:
    inbox = FlakyInbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield inbox, controller.port
    controller.stop()


def settings(database_url: str, port: int) -> Settings:
    return Settings(
        database_url=database_url, secret_key=SECRET, base_url="https://partners.acme.example", smtp_host="127.0.0.1",
        smtp_port=port, smtp_starttls=False, smtp_from="Acme partners <partners@acme.example>",
        smtp_timeout_seconds=5,
    )  # fmt: skip


def drain(worker: Worker, session_factory: sessionmaker[Session], clock: FixedClock) -> None:
    """Run every job that is due, moving the clock past retry backoffs, until the outbox is empty."""
    for _ in range(20):
        worker.run_periodic(force=True)
        worker.run_pending()
        with session_factory() as s:
            # Jobs waiting out a retry backoff; scheduled ones (update reminders days ahead) stay in the future.
            waiting = s.scalars(
                select(OutboxJob.run_after).where(OutboxJob.status == JobStatus.PENDING.value, OutboxJob.attempts > 0)
            ).all()
            dead = s.scalars(select(OutboxJob.last_error).where(OutboxJob.status == JobStatus.DEAD.value)).all()
        assert not dead, dead
        if not waiting:
            return
        clock.set(max(clock.now(), max(waiting)))
    raise AssertionError("the outbox did not drain")


def as_partner(partner: Partner) -> Actor:
    return Actor(ActorType.PARTNER, "pu_" + partner.id[4:], frozenset({"read"}), program_id=partner.program_id,
                 partner_id=partner.id, label=partner.email)  # fmt: skip


class TestLifecycle:
    def test_every_notification_arrives_once(
        self,
        database_url: str,
        session_factory: sessionmaker[Session],
        clock: FixedClock,
        smtp: tuple[FlakyInbox, int],
    ) -> None:
        inbox, port = smtp
        inbox.refuse = 3  # the first three messages are greylisted once: delayed, not lost, not doubled
        config = settings(database_url, port)
        box = config.secret_box()
        scheduler = Scheduler([PeriodicTask("messaging.hold_notices", hold_notices_due)])
        worker = Worker(session_factory, build_registry(config), clock=clock, scheduler=scheduler)
        t0 = clock.now()

        with session_factory() as s:  # invitation (Ben) and application → welcome (Ada)
            STAFF = staff_actor(create_staff_user(s, actor=SYSTEM, email="pm@acme.example", role="finance",
                                                  password="long enough pw", now=t0))  # fmt: skip
            prog = factories.program(s, t0, name="Acme Cloud", hold_days=30)
            program_id = prog.id
            invite_partner(s, actor=SYSTEM, program_id=program_id, name="Ben Blog", email=BEN, now=t0)
            ada = submit_application(s, program_id=program_id, now=t0, data={
                "name": "Ada Media", "email": ADA, "company": "Ada Media", "website": "adamedia.example"})  # fmt: skip
            approve_applications(s, actor=STAFF, partner_ids=[ada.id], now=t0)
            set_payout_method(
                s,
                actor=SYSTEM,
                box=box,
                partner_id=ada.id,
                now=t0,
                data={"type": "sepa", "iban": "NL91ABNA0417164300", "account_holder": "Ada Media BV"},
            )
            for method in s.scalars(select(PayoutMethod)):
                method.verified = True
            put_funding_account(s, actor=SYSTEM, box=box, program_id=program_id, body={"sepa": SEPA_FUNDING}, now=t0)
            ada_id = ada.id
            s.commit()
        drain(worker, session_factory, clock)

        def earn(external_id: str, amount: int) -> list[str]:
            with session_factory() as s:
                prog = s.get(Program, program_id)
                assert prog is not None
                lines = factories.event(s, prog, clock.now(), external_id=external_id, customer=f"c-{external_id}",
                                        amount=amount, partner_id=ada_id)  # fmt: skip
                s.commit()
                ids = [line.id for line in lines]
            clock.set(clock.now() + timedelta(minutes=5))  # the next five-minute slot of the hold sweep
            drain(worker, session_factory, clock)  # the sweep: "on hold until"
            with session_factory() as s:
                approve_lines(s, actor=SYSTEM, ids=ids, now=clock.now())
                s.commit()
            drain(worker, session_factory, clock)
            return ids

        def pay(outcome: str) -> None:
            with session_factory() as s:
                run = create_payout_run(s, actor=SYSTEM, program_id=program_id, now=clock.now())
                assert run.batch is not None, run.skipped
                approve_batch(s, actor=SYSTEM, batch_id=run.batch.id, now=clock.now())
                start_send(s, actor=SYSTEM, box=box, batch_id=run.batch.id, now=clock.now())
                batch_id = run.batch.id
                s.commit()
            drain(worker, session_factory, clock)  # the Pay all job writes the SEPA file: "sent"
            with session_factory() as s:
                (payout_id,) = s.scalars(select(Payout.id).where(Payout.batch_id == batch_id))
                reason = "AC04 account closed" if outcome == "failed" else None
                record_results(s, actor=SYSTEM, results=[RailResult(payout_id, outcome, reason=reason)],
                               now=clock.now())  # fmt: skip
                s.commit()
            drain(worker, session_factory, clock)

        earn("inv-1", 120_000)  # 20 % of €1,200.00 = €240.00, on hold 30 days
        clock.set(t0 + timedelta(days=31))
        pay("paid")
        earn("inv-2", 50_000)  # €100.00
        clock.set(t0 + timedelta(days=62))
        pay("failed")

        with session_factory() as s:  # update requested, dispute answered, announcement, a message
            partner = s.get(Partner, ada_id)
            assert partner is not None
            lead = register_lead(s, actor=as_partner(partner), program_id=program_id, company="Globex",
                                 domain="globex.example", now=clock.now())  # fmt: skip
            ask_for_update(s, actor=STAFF, lead_id=lead.id, message="Did the demo happen?", now=clock.now())
            from partnerpay.disputes.service import open_dispute, resolve

            line_id = s.scalars(select(CommissionLine.id).where(CommissionLine.partner_id == ada_id)).first()
            dispute = open_dispute(s, actor=as_partner(partner), kind="wrong_amount", description="Should be 25 %",
                                   line_id=line_id, amount=30_000, now=clock.now())  # fmt: skip
            resolve(s, actor=STAFF, dispute_id=dispute.id, action="reject", reason="The plan pays 20 %",
                    now=clock.now())  # fmt: skip
            announce(s, actor=STAFF, program_id=program_id, subject="New tiers from May", body="Details inside.",
                     now=clock.now())  # fmt: skip
            post_message(s, author=STAFF, partner_id=ada_id, topic_type="general", topic_id=None,
                         subject="Welcome call", body="Shall we talk on Monday?", now=clock.now())  # fmt: skip
            s.commit()
        drain(worker, session_factory, clock)

        expected = [
            "Welcome to the Acme Cloud partner program",
            "New commission of €240.00, on hold until 14 Feb 2026 (Acme Cloud)",
            "1 commission(s) approved: €240.00 (Acme Cloud)",
            "Your payout of €240.00 was approved (Acme Cloud)",
            "Your payout of €240.00 is on its way (Acme Cloud)",
            "Your payout of €240.00 was paid (Acme Cloud)",
            "New commission of €100.00, on hold until 17 Mar 2026 (Acme Cloud)",
            "1 commission(s) approved: €100.00 (Acme Cloud)",
            "Your payout of €100.00 was approved (Acme Cloud)",
            "Your payout of €100.00 is on its way (Acme Cloud)",
            "Your payout of €100.00 could not be paid (Acme Cloud)",
            "Acme Cloud: an update on Globex, please",
            f"Your dispute {dispute.id} was answered: rejected (Acme Cloud)",
            "New tiers from May (Acme Cloud)",
            "New message: Welcome call (Acme Cloud)",
        ]
        subjects = Counter(m["Subject"] for m in inbox.to(ADA))
        assert {s: subjects[s] for s in expected} == {s: 1 for s in expected}, "\n".join(sorted(subjects))
        assert sorted(m["Subject"] for m in inbox.to(BEN)) == [
            "New tiers from May (Acme Cloud)",  # every active partner of the program
            "You are invited to the Acme Cloud partner program",
        ]
        # Nothing arrived twice, although three messages were refused once and sent again.
        delivered = {m["Message-ID"] for m in inbox.messages}
        assert len(inbox.refused) == 3 and all(ref in delivered for ref in inbox.refused)
        assert max(Counter(m["Message-ID"] for m in inbox.messages).values()) == 1
        assert max(subjects.values()) == 1

        by_subject = {m["Subject"]: m for m in inbox.to(ADA)}
        failed = by_subject["Your payout of €100.00 could not be paid (Acme Cloud)"].get_content()
        assert "AC04 account closed" in failed and "https://partners.acme.example/portal/payouts/pay_" in failed
        money = by_subject["Your payout of €240.00 was paid (Acme Cloud)"]
        assert money["List-Unsubscribe"] is None  # transactional: no unsubscribing from money mail
        news = by_subject["New tiers from May (Acme Cloud)"]
        assert news["List-Unsubscribe"].startswith("<https://partners.acme.example/unsubscribe/")
        assert news["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert "To stop these emails: https://partners.acme.example/unsubscribe/" in news.get_content()


class TestFailingServer:
    def test_a_4xx_answer_delays_the_mail_and_the_retry_delivers_it_once(
        self,
        database_url: str,
        session_factory: sessionmaker[Session],
        clock: FixedClock,
        smtp: tuple[FlakyInbox, int],
    ) -> None:
        inbox, port = smtp
        inbox.refuse = 1
        with session_factory() as s:
            enqueue_email(s, to=ADA, subject="Your payout", text="was paid", now=clock.now())
            s.commit()
        worker = Worker(session_factory, build_registry(settings(database_url, port)), clock=clock)

        worker.run_pending()
        with session_factory() as s:
            job = s.scalars(select(OutboxJob).where(OutboxJob.kind == EMAIL_SEND)).one()
        assert inbox.messages == [] and job.status == JobStatus.PENDING.value and job.attempts == 1
        assert "451" in (job.last_error or "") and job.run_after > clock.now()

        worker.run_pending()  # not due yet: nothing is sent early
        assert inbox.messages == []
        clock.set(job.run_after)
        worker.run_pending()
        (message,) = inbox.messages
        assert message["Subject"] == "Your payout" and message["Message-ID"] == f"<{job.id}@acme.example>"
        assert inbox.refused == [message["Message-ID"]]  # the same message, sent again
        with session_factory() as s:
            done = s.get(OutboxJob, job.id)
            assert done is not None and done.status == JobStatus.DONE.value and done.attempts == 1
        worker.run_pending()
        assert len(inbox.messages) == 1


class TestOutsideTheTransaction:
    def test_the_mailer_runs_while_the_database_stays_writable(
        self, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        """On SQLite the worker's transaction holds the write lock: SMTP must not talk inside it. The mailer here
        writes to the database while it "sends"; inside the transaction that write would wait for the lock."""

        class WritingMailer:
            sent: list[str] = []

            def send(self, email: Email) -> None:
                with session_factory() as other:
                    enqueue(other, "test.noop", [{"during": email.subject}], now=clock.now())
                    other.commit()
                self.sent.append(email.subject)

        with session_factory() as s:
            enqueue_email(s, to=ADA, subject="Your payout", text="was paid", now=clock.now())
            s.commit()
        registry = Registry()
        registry.add(EMAIL_SEND, email_handler(WritingMailer(), base_url="https://partners.acme.example"))
        Worker(session_factory, registry, clock=clock).run_pending(max_jobs=1)

        assert WritingMailer.sent == ["Your payout"]
        with session_factory() as s:
            kinds = {kind: status for kind, status in s.execute(select(OutboxJob.kind, OutboxJob.status))}
        assert kinds == {EMAIL_SEND: JobStatus.DONE.value, "test.noop": JobStatus.PENDING.value}
