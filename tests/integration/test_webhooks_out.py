"""Outgoing webhooks against a real loopback receiver that checks each signature: events from the services that
make the changes, retries with backoff, timeouts, giving up, replay and secret rotation."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.decisions import approve_lines
from partnerpay.db.engine import unit_of_work
from partnerpay.deals.leads import accept_leads, register_lead
from partnerpay.deals.service import move_deal
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.models import OutboxJob
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.crypto import SecretBox
from partnerpay.kit.errors import ValidationError
from partnerpay.payouts.models import Payout
from partnerpay.payouts.reconcile import RailResult, record_results
from partnerpay.payouts.service import approve_batch, create_payout_run
from partnerpay.programs.models import Program
from partnerpay.settings import Settings
from partnerpay.webhooks_out import emit
from partnerpay.webhooks_out.delivery import MAX_ATTEMPTS, replay, retry_delay
from partnerpay.webhooks_out.models import (
    DeliveryStatus,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSubscription,
)
from partnerpay.webhooks_out.subscriptions import create_subscription, rotate_secret, update_subscription
from partnerpay.webhooks_out.urls import check_url
from tests import factories
from tests.integration.webhook_receiver import Receiver, receiver

# The receiver listens on 127.0.0.1, an address deliveries refuse unless the settings allow private targets.
SETTINGS = Settings(
    secret_key="w" * 40, outgoing_webhook_timeout_seconds=0.5, outgoing_webhook_allow_private_targets=True
)
BOX: SecretBox = SETTINGS.secret_box()


@pytest.fixture
def hook() -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def run_worker(session: Session, session_factory: sessionmaker[Session], clock: FixedClock) -> int:
    session.commit()  # the test's own reads end their transaction (SQLite: the worker needs the write lock)
    return Worker(session_factory, build_registry(SETTINGS), clock=clock).run_pending()


def subscribe(session: Session, prog: Program, url: str, types: list[str], clock: FixedClock) -> str:
    _, secret = create_subscription(
        session, actor=SYSTEM, box=BOX, program_id=prog.id, url=url, event_types=types, now=clock.now(),
        allow_private=True,  # the receiver is on 127.0.0.1, which SETTINGS allows
    )  # fmt: skip
    session.commit()
    return secret


def one_commission(session: Session, prog: Program, clock: FixedClock, n: int = 1) -> list[str]:
    partner = factories.partner(session, prog, clock.now(), f"Partner {n} {prog.id}")
    lines = factories.event(
        session, prog, clock.now(), external_id=f"inv-{n}", customer=f"c{n}", amount=10_000, partner_id=partner.id
    )
    session.commit()
    return [line.id for line in lines]


def deliveries(session: Session) -> list[WebhookDelivery]:
    session.expire_all()
    return list(session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.created_at, WebhookDelivery.id)))


class TestEmit:
    def test_no_subscription_writes_nothing(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        one_commission(session, prog, clock)
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0
        assert session.scalar(select(func.count()).where(OutboxJob.kind == emit.DELIVER_JOB)) == 0

    def test_only_subscribed_types_of_the_program_are_sent(self, session: Session, clock: FixedClock) -> None:
        prog, other = factories.program(session, clock.now()), factories.program(session, clock.now(), name="Other")
        subscribe(session, prog, "https://hooks.example.com/a", ["payout.paid"], clock)
        subscribe(session, other, "https://hooks.example.com/b", ["commission.created"], clock)
        one_commission(session, prog, clock)
        assert session.scalar(select(func.count()).select_from(WebhookEvent)) == 0

    def test_unknown_event_type_is_a_programming_error(self, session: Session, clock: FixedClock) -> None:
        prog = factories.program(session, clock.now())
        with pytest.raises(ValueError, match="unknown webhook event type"):
            emit.emit(session, prog.id, "payout.sent", {}, clock.now())


class TestDelivery:
    def test_commission_created_is_posted_signed_with_the_event_id(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock, hook: Receiver
    ) -> None:
        prog = factories.program(session, clock.now())
        secret = subscribe(session, prog, hook.url, ["commission.created", "commission.approved"], clock)
        [line_id] = one_commission(session, prog, clock)
        assert run_worker(session, session_factory, clock) >= 1
        [request] = hook.requests
        assert request.path == "/hooks/partnerpay"
        assert request.signed_with(secret)
        assert not request.signed_with(secret + "x")
        assert request.timestamp == int(clock.now().timestamp())
        body = request.json()
        assert set(body) == {"id", "type", "created", "program_id", "data"}
        assert body["type"] == "commission.created" and body["program_id"] == prog.id
        assert request.headers["partnerpay-event-id"] == body["id"]
        assert request.headers["partnerpay-event-type"] == "commission.created"
        assert request.headers["content-type"] == "application/json"
        data = body["data"]
        assert data["id"] == line_id and data["amount"] == 2_000 and data["currency"] == "EUR"
        assert data["status"] == "pending" and data["object"] == "commission_line" and data["explanation"]
        [delivery] = deliveries(session)
        assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 1
        assert delivery.last_status_code == 200 and delivery.delivered_at == clock.now()
        [attempt] = session.scalars(select(WebhookAttempt)).all()
        assert (attempt.number, attempt.status_code, attempt.response_excerpt, attempt.error) == (1, 200, "ok", None)
        assert attempt.duration_ms >= 0

        approve_lines(session, actor=SYSTEM, ids=[line_id], now=clock.now())
        session.commit()
        run_worker(session, session_factory, clock)
        approved = hook.requests[1].json()
        assert approved["type"] == "commission.approved" and approved["data"]["status"] == "approved"
        assert approved["id"] != body["id"]

    def test_a_500_is_retried_after_the_backoff_then_delivered(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock, hook: Receiver
    ) -> None:
        prog = factories.program(session, clock.now())
        secret = subscribe(session, prog, hook.url, ["commission.created"], clock)
        hook.script = [500]
        one_commission(session, prog, clock)
        run_worker(session, session_factory, clock)
        [delivery] = deliveries(session)
        assert delivery.status == DeliveryStatus.RETRYING and delivery.attempts == 1
        assert delivery.last_status_code == 500 and delivery.next_attempt_at == clock.now() + retry_delay(1)
        assert delivery.last_error == "the receiver answered HTTP 500"
        run_worker(session, session_factory, clock)  # not due yet: nothing is sent
        assert len(hook.requests) == 1
        clock.advance(retry_delay(1))
        run_worker(session, session_factory, clock)
        first, second = hook.requests
        assert first.body == second.body  # the same event, byte for byte
        assert first.headers["partnerpay-event-id"] == second.headers["partnerpay-event-id"]
        assert second.timestamp - first.timestamp == 30 and second.signed_with(secret)
        [delivery] = deliveries(session)
        assert delivery.status == DeliveryStatus.DELIVERED and delivery.attempts == 2
        attempts = session.scalars(select(WebhookAttempt).order_by(WebhookAttempt.number)).all()
        assert [a.status_code for a in attempts] == [500, 200]
        assert attempts[0].response_excerpt.startswith("receiver exploded") and len(attempts[0].response_excerpt) == 500

    def test_the_post_holds_no_database_lock(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock, hook: Receiver
    ) -> None:
        """The receiver writes to partnerpay's database before answering (as a receiver calling our API would):
        on SQLite that waits for any open writer, so a POST made inside the worker's transaction would time out."""
        prog = factories.program(session, clock.now())
        subscribe(session, prog, hook.url, ["commission.created"], clock)
        one_commission(session, prog, clock)

        def write() -> None:
            with unit_of_work(session_factory) as other:
                other.execute(text("UPDATE programs SET name = name"))

        hook.on_request = write
        run_worker(session, session_factory, clock)
        [delivery] = deliveries(session)
        assert delivery.status == DeliveryStatus.DELIVERED, delivery.last_error

    def test_backoff_doubles_and_is_capped(self) -> None:
        assert [retry_delay(n).total_seconds() for n in range(1, 6)] == [30, 60, 120, 240, 480]
        assert retry_delay(30) == timedelta(hours=6)

    def test_a_timeout_is_an_attempt_without_status_and_is_retried(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock, hook: Receiver
    ) -> None:
        prog = factories.program(session, clock.now())
        subscribe(session, prog, hook.url, ["commission.created"], clock)
        hook.script = [("sleep", 2.0)]
        one_commission(session, prog, clock)
        run_worker(session, session_factory, clock)
        [delivery] = deliveries(session)
        assert delivery.status == DeliveryStatus.RETRYING and delivery.last_status_code is None
        assert "timeout" in (delivery.last_error or "")
        [attempt] = session.scalars(select(WebhookAttempt)).all()
        assert attempt.status_code is None and "no answer within 0.5 s" in (attempt.error or "")
        clock.advance(retry_delay(1))
        run_worker(session, session_factory, clock)
        assert deliveries(session)[0].status == DeliveryStatus.DELIVERED

    def test_gives_up_after_the_last_attempt(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock, hook: Receiver
    ) -> None:
        prog = factories.program(session, clock.now())
        subscribe(session, prog, hook.url, ["commission.created"], clock)
        hook.script = [503] * (MAX_ATTEMPTS + 2)
        one_commission(session, prog, clock)
        for n in range(1, MAX_ATTEMPTS + 1):
            run_worker(session, session_factory, clock)
            clock.advance(retry_delay(n))
        run_worker(session, session_factory, clock)
        assert len(hook.requests) == MAX_ATTEMPTS
        [delivery] = deliveries(session)
        assert delivery.status == DeliveryStatus.DEAD and delivery.attempts == MAX_ATTEMPTS and delivery.job_id is None

    def test_replay_resends_the_same_event_with_a_new_signature(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock, hook: Receiver
    ) -> None:
        prog = factories.program(session, clock.now())
        secret = subscribe(session, prog, hook.url, ["commission.created"], clock)
        one_commission(session, prog, clock)
        run_worker(session, session_factory, clock)
        [original] = deliveries(session)
        clock.advance(timedelta(hours=2))
        fresh = replay(session, actor=SYSTEM, delivery_id=original.id, now=clock.now())
        session.commit()
        run_worker(session, session_factory, clock)
        first, again = hook.requests
        assert again.body == first.body
        assert again.headers["partnerpay-event-id"] == first.headers["partnerpay-event-id"]
        assert again.timestamp == first.timestamp + 7200 and again.signed_with(secret)
        assert again.headers["partnerpay-signature"] != first.headers["partnerpay-signature"]
        rows = {d.id: d for d in deliveries(session)}
        assert rows[fresh.id].replay_of == original.id and rows[fresh.id].status == DeliveryStatus.DELIVERED
        assert rows[original.id].attempts == 1
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "webhook_delivery.replay")).all()
        assert [a.object_id for a in audit] == [fresh.id]

    def test_a_disabled_subscription_is_not_called(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock, hook: Receiver
    ) -> None:
        prog = factories.program(session, clock.now())
        subscribe(session, prog, hook.url, ["commission.created"], clock)
        one_commission(session, prog, clock)
        [delivery] = deliveries(session)
        update_subscription(
            session, actor=SYSTEM, subscription_id=delivery.subscription_id, changes={"active": False}, now=clock.now()
        )
        session.commit()
        run_worker(session, session_factory, clock)
        assert hook.requests == []
        assert deliveries(session)[0].status == DeliveryStatus.DEAD

    def test_after_rotation_both_secrets_sign_during_the_grace(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock, hook: Receiver
    ) -> None:
        prog = factories.program(session, clock.now())
        old = subscribe(session, prog, hook.url, ["commission.created"], clock)
        sub = session.scalars(select(WebhookSubscription)).one()
        assert old not in sub.sealed and sub.secret_hint == "••••" + old[-4:]
        _, new = rotate_secret(
            session, actor=SYSTEM, box=BOX, subscription_id=sub.id, previous_secret_hours=1, now=clock.now()
        )
        session.commit()
        one_commission(session, prog, clock, n=1)
        run_worker(session, session_factory, clock)
        clock.advance(timedelta(hours=2))
        one_commission(session, prog, clock, n=2)
        run_worker(session, session_factory, clock)
        during, after = hook.requests
        assert during.signed_with(new) and during.signed_with(old)
        assert after.signed_with(new) and not after.signed_with(old)
        rotations = session.scalars(select(AuditEntry).where(AuditEntry.action == "webhook_subscription.rotate_secret"))
        assert [r.object_id for r in rotations] == [sub.id]
        assert new not in str([r.after for r in session.scalars(select(AuditEntry))])


class TestDomainEvents:
    def test_payout_paid_and_failed(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock, hook: Receiver
    ) -> None:
        prog = factories.program(session, clock.now())
        ids = one_commission(session, prog, clock, 1) + one_commission(session, prog, clock, 2)
        approve_lines(session, actor=SYSTEM, ids=ids, now=clock.now())
        run = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=clock.now())
        assert run.batch is not None
        approve_batch(session, actor=SYSTEM, batch_id=run.batch.id, now=clock.now())
        session.commit()
        subscribe(session, prog, hook.url, ["payout.paid", "payout.failed"], clock)
        paid, failed = session.scalars(select(Payout).order_by(Payout.partner_id)).all()
        record_results(
            session,
            actor=SYSTEM,
            results=[RailResult(paid.id, "paid"), RailResult(failed.id, "failed", reason="AC04 account closed")],
            now=clock.now(),
        )
        session.commit()
        run_worker(session, session_factory, clock)
        bodies = {r.json()["type"]: r.json()["data"] for r in hook.requests}
        assert bodies["payout.paid"]["id"] == paid.id and bodies["payout.paid"]["amount"] == paid.amount
        assert bodies["payout.failed"] == {
            "id": failed.id,
            "object": "payout",
            "batch_id": failed.batch_id,
            "partner_id": failed.partner_id,
            "amount": failed.amount,
            "currency": "EUR",
            "status": "failed",
            "at": clock.now().isoformat(),
            "reason": "AC04 account closed",
        }

    def test_deal_updated_on_acceptance_and_each_move(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock, hook: Receiver
    ) -> None:
        prog = factories.program(session, clock.now())
        partner = factories.partner(session, prog, clock.now(), "Dealer")
        subscribe(session, prog, hook.url, ["deal.updated"], clock)
        lead = register_lead(
            session, actor=SYSTEM, program_id=prog.id, partner_id=partner.id, company="Acme Corp", now=clock.now()
        )
        [deal] = accept_leads(session, actor=SYSTEM, lead_ids=[lead.id], now=clock.now())
        move_deal(session, actor=SYSTEM, deal_id=deal.id, status="lost", reason="went elsewhere", now=clock.now())
        session.commit()
        run_worker(session, session_factory, clock)
        changes = [(r.json()["data"]["change"], r.json()["data"]["status"]) for r in hook.requests]
        assert sorted(changes) == [("deal.lost", "lost"), ("lead.accepted", "open")]
        assert {r.json()["data"]["id"] for r in hook.requests} == {deal.id}


class TestUrls:
    @pytest.mark.parametrize(
        "url",
        [
            "http://hooks.example.com/x",
            "ftp://hooks.example.com/x",
            "https://10.1.2.3/x",
            "https://169.254.169.254/latest",
            "https://user:pw@hooks.example.com/",
            "https://hooks.example.com/x#part",
            "https://db.internal/x",
            "https://printer.local/x",
            "http://127.0.0.1:8080/h",
            "https://localhost/h",
            "https://[::1]/h",
            "not a url",
            "",
        ],
    )
    def test_refused(self, url: str) -> None:
        with pytest.raises(ValidationError) as caught:
            check_url(url)
        assert caught.value.field == "url"

    def test_a_local_receiver_is_refused_naming_the_setting_that_allows_it(self) -> None:
        with pytest.raises(ValidationError, match="PARTNERPAY_OUTGOING_WEBHOOK_ALLOW_PRIVATE_TARGETS=true"):
            check_url("http://localhost:9000/h")

    @pytest.mark.parametrize("url", ["https://hooks.example.com/partnerpay?x=1", " https://93.184.216.34/in "])
    def test_accepted(self, url: str) -> None:
        assert check_url(url) == url.strip()

    @pytest.mark.parametrize(
        ("url", "accepted"),
        [
            ("http://127.0.0.1:8080/h", True),
            ("http://localhost/h", True),
            ("https://10.1.2.3/x", True),
            ("http://receiver.internal:8000/in", True),
            ("ftp://hooks.example.com/x", False),
            ("https://user:pw@localhost/", False),
            ("http://localhost/h#part", False),
        ],
    )
    def test_with_private_targets_allowed_any_host_over_http_or_https(self, url: str, accepted: bool) -> None:
        if accepted:
            assert check_url(url, allow_private=True) == url
        else:
            with pytest.raises(ValidationError):
                check_url(url, allow_private=True)
