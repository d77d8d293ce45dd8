"""Pay all: each payout through its partner's rail, against local Stripe and PayPal servers; lost answers,
timeouts and crashes at named points never pay anyone twice, and the ledger ties out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.errors import InvalidTransition, ValidationError
from partnerpay.ledger.verify import verify
from partnerpay.partners.payout_details import set_payout_method
from partnerpay.payouts import http_rails, rails, sending
from partnerpay.payouts.models import Payout, PayoutFile
from partnerpay.payouts.sending import run_send, start_send
from tests.integration.payout_rail_fakes import FakePaypal, FakeStripe, serving
from tests.integration.sending_helpers import BOX, approved_batch, batch_status, drain, statuses, worker


class Crash(Exception):
    pass


def ties_out(session: Session) -> bool:
    """`partnerpay verify` clean (each batch's tie-out holds every stored file to the payouts it lists), and
    every stored file equal to the payouts it lists (rails.check_files)."""
    problems = verify(session).problems
    assert problems == [] and rails.check_files(session) == [], (problems, rails.check_files(session))
    return True


def send(session: Session, clock: FixedClock, batch_id: str) -> None:
    start_send(session, actor=SYSTEM, box=BOX, batch_id=batch_id, now=clock.now())
    session.commit()


def paid_lines(session: Session, program_id: str) -> int:
    return int(
        session.scalar(
            select(func.count()).where(
                CommissionLine.program_id == program_id, CommissionLine.status == LineStatus.PAID.value
            )
        )
        or 0
    )


class TestStartSend:
    def test_a_missing_payout_method_refuses_the_batch_naming_every_partner_and_changes_nothing(
        self, session: Session, clock: FixedClock
    ) -> None:
        setup = approved_batch(session, clock, ["sepa", "nomethod", "nothing"])
        with pytest.raises(ValidationError) as err:
            send(session, clock, setup.batch_id)
        session.rollback()
        assert "Nomethod" in err.value.message and "Nothing" in err.value.message
        assert {p["partner"] for p in err.value.extra["problems"]} == {"Nomethod", "Nothing"}
        assert set(statuses(session, setup.batch_id).values()) == {"approved"}
        assert batch_status(session, setup.batch_id) == "approved"

    def test_a_partner_whose_payout_details_changed_after_the_run_is_held_back(
        self, session: Session, clock: FixedClock
    ) -> None:
        setup = approved_batch(session, clock, ["sepa", "stripe"])
        payout = session.get(Payout, setup.payouts["stripe"])
        assert payout is not None
        set_payout_method(
            session,
            actor=SYSTEM,
            box=BOX,
            partner_id=payout.partner_id,
            data={"type": "stripe_connect", "account_id": "acct_9Hijacked0000000"},
            now=clock.now(),
        )
        session.commit()
        with pytest.raises(ValidationError, match=r"Stripe .*payout details changed; held for review until"):
            send(session, clock, setup.batch_id)
        session.rollback()
        assert batch_status(session, setup.batch_id) == "approved"

    def test_a_stripe_partner_without_the_programs_api_key_is_refused(
        self, session: Session, clock: FixedClock
    ) -> None:
        setup = approved_batch(session, clock, ["stripe"], stripe_key=False)
        with pytest.raises(ValidationError, match="no api_key"):
            send(session, clock, setup.batch_id)

    def test_a_draft_batch_cannot_be_sent(self, session: Session, clock: FixedClock) -> None:
        setup = approved_batch(session, clock, ["sepa"], approve=False)
        with pytest.raises(InvalidTransition, match="cannot become sending"):
            send(session, clock, setup.batch_id)

    def test_rails_and_keys_are_fixed_when_the_batch_is_sent(self, session: Session, clock: FixedClock) -> None:
        setup = approved_batch(session, clock, ["sepa", "paypal", "stripe"], paypal_keys=False)
        send(session, clock, setup.batch_id)
        payouts = {p.id: p for p in session.scalars(select(Payout))}
        assert payouts[setup.payouts["sepa"]].rail == "sepa"
        assert payouts[setup.payouts["paypal"]].rail == "paypal_csv"  # no PayPal credentials: the upload file
        stripe = payouts[setup.payouts["stripe"]]
        assert (stripe.rail, stripe.idempotency_key) == ("stripe_connect", f"partnerpay-payout-{stripe.id}")
        assert batch_status(session, setup.batch_id) == "sending"


class TestStripeRail:
    def test_transfers_are_sent_with_the_documented_shape_and_recorded_paid(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = approved_batch(session, clock, ["stripe", "stripe2"])
        send(session, clock, setup.batch_id)
        with serving(FakeStripe()) as fake:
            drain(session, worker(session_factory, clock, stripe_url=fake.url))
        posts = fake.posts()
        assert len(posts) == 2 and len(fake.transfers) == 2
        payout = session.get(Payout, setup.payouts["stripe"])
        assert payout is not None
        (first,) = [r for r in posts if r.form()["metadata[payout_id]"] == payout.id]
        assert first.headers["authorization"] == "Bearer sk_test_4eC39HqLyjWDarjtT1zdp7dc"
        assert first.headers["content-type"] == "application/x-www-form-urlencoded"
        assert first.headers["idempotency-key"] == f"partnerpay-payout-{payout.id}"
        assert first.form() == {
            "amount": "2000",
            "currency": "eur",
            "destination": "acct_1Nv0FGQ9RKHgCVdK",
            "transfer_group": setup.batch_id,
            "metadata[payout_id]": payout.id,
            "metadata[partner_id]": payout.partner_id,
        }
        assert set(statuses(session, setup.batch_id).values()) == {"paid"}
        (transfer,) = [t for t in fake.transfers if t["metadata"]["payout_id"] == payout.id]
        assert payout.provider_ref == transfer["id"]
        assert batch_status(session, setup.batch_id) == "paid"
        assert paid_lines(session, setup.program_id) == 2
        assert ties_out(session)

    def test_a_lost_answer_is_asked_again_with_the_same_key_and_pays_once(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = approved_batch(session, clock, ["stripe"])
        send(session, clock, setup.batch_id)
        with serving(FakeStripe(lose_next=1)) as fake:
            run = worker(session_factory, clock, stripe_url=fake.url)
            drain(session, run)
            assert statuses(session, setup.batch_id) == {setup.payouts["stripe"]: "sending"}
            payout = session.get(Payout, setup.payouts["stripe"])
            assert payout is not None and payout.last_error and "could not reach Stripe" in payout.last_error
            clock.advance(timedelta(hours=1))
            drain(session, run)
        keys = [r.headers["idempotency-key"] for r in fake.posts()]
        assert len(keys) == 2 and keys[0] == keys[1]
        assert len(fake.transfers) == 1  # the retry got the original transfer back
        assert statuses(session, setup.batch_id) == {setup.payouts["stripe"]: "paid"}
        assert ties_out(session)

    def test_a_timeout_keeps_the_payout_sending_until_stripe_answers(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = approved_batch(session, clock, ["stripe"])
        send(session, clock, setup.batch_id)
        with serving(FakeStripe(slow_next=1, slow_seconds=1.5)) as fake:
            run = worker(session_factory, clock, stripe_url=fake.url, timeout=0.5)
            drain(session, run)
            payout = session.get(Payout, setup.payouts["stripe"])
            assert (
                payout is not None
                and payout.status == "sending"
                and "did not answer in time" in (payout.last_error or "")
            )
            clock.advance(timedelta(hours=1))
            drain(session, run)
        assert len(fake.transfers) == 1 and len(fake.posts()) == 2
        assert statuses(session, setup.batch_id) == {setup.payouts["stripe"]: "paid"}

    def test_insufficient_balance_fails_the_payout_with_stripes_reason_and_gives_the_money_back(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = approved_batch(session, clock, ["stripe"])
        send(session, clock, setup.batch_id)
        with serving(FakeStripe(balance=0)) as fake:
            drain(session, worker(session_factory, clock, stripe_url=fake.url))
        payout = session.get(Payout, setup.payouts["stripe"])
        assert payout is not None and payout.status == "failed"
        assert "balance_insufficient" in (payout.failure_reason or "")
        assert set(session.scalars(select(CommissionLine.status))) == {LineStatus.APPROVED.value}
        assert ties_out(session)


class TestPaypalRail:
    def test_a_payout_batch_is_created_then_polled_to_paid_and_failed(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = approved_batch(session, clock, ["paypal", "paypal2"])
        send(session, clock, setup.batch_id)
        with serving(FakePaypal()) as fake:
            run = worker(session_factory, clock, paypal_url=fake.url)
            drain(session, run)
            assert set(statuses(session, setup.batch_id).values()) == {"sent"}
            (create,) = fake.creates()
            body = create.json()
            assert create.headers["authorization"] == "Bearer A21AAtoken"
            assert body["sender_batch_header"]["sender_batch_id"] == f"{setup.batch_id}-001"
            assert create.headers["paypal-request-id"] == f"{setup.batch_id}-001"
            (item,) = [i for i in body["items"] if i["sender_item_id"] == setup.payouts["paypal"]]
            assert len(body["items"]) == 2
            assert item == {
                "recipient_type": "EMAIL",
                "amount": {"value": "20.00", "currency": "EUR"},
                "receiver": "pay@partner.example",
                "sender_item_id": setup.payouts["paypal"],
                "note": f"Commission payout {setup.payouts['paypal']}",
            }
            token = fake.requests[0]
            assert token.path == "/v1/oauth2/token" and token.form() == {"grant_type": "client_credentials"}
            fake.item_status = {setup.payouts["paypal"]: "SUCCESS", setup.payouts["paypal2"]: "FAILED"}
            clock.advance(timedelta(minutes=11))
            drain(session, run)
        now = statuses(session, setup.batch_id)
        assert now == {setup.payouts["paypal"]: "paid", setup.payouts["paypal2"]: "failed"}
        failed = session.get(Payout, setup.payouts["paypal2"])
        assert failed is not None and "Receiver is unregistered" in (failed.failure_reason or "")
        assert ties_out(session)

    @pytest.mark.parametrize("honour_request_id", [True, False])
    def test_a_lost_create_answer_is_retried_with_the_same_sender_batch_id_and_pays_once(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock, honour_request_id: bool
    ) -> None:
        setup = approved_batch(session, clock, ["paypal"])
        send(session, clock, setup.batch_id)
        fake = FakePaypal(honour_request_id=honour_request_id, lose_next=1, lose_path="/v1/payments/payouts")
        with serving(fake):
            run = worker(session_factory, clock, paypal_url=fake.url)
            drain(session, run)
            assert statuses(session, setup.batch_id) == {setup.payouts["paypal"]: "sending"}
            clock.advance(timedelta(hours=1))
            drain(session, run)
        ids = [c.json()["sender_batch_header"]["sender_batch_id"] for c in fake.creates()]
        assert ids == [f"{setup.batch_id}-001"] * 2
        assert len(fake.batches) == 1  # PayPal made one payout batch
        payout = session.get(Payout, setup.payouts["paypal"])
        assert payout is not None and payout.status == "sent" and payout.provider_ref == "PB000001"


class TestChunks:
    def test_paypal_items_beyond_the_per_call_limit_go_in_another_payout_batch(
        self,
        session: Session,
        session_factory: sessionmaker[Session],
        clock: FixedClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(sending, "MAX_ITEMS", 1)  # 15,000 in production: one item per call here
        setup = approved_batch(session, clock, ["paypal", "paypal2"])
        send(session, clock, setup.batch_id)
        with serving(FakePaypal()) as fake:
            drain(session, worker(session_factory, clock, paypal_url=fake.url))
        ids = sorted(c.json()["sender_batch_header"]["sender_batch_id"] for c in fake.creates())
        assert ids == [f"{setup.batch_id}-001", f"{setup.batch_id}-002"]
        assert [len(c.json()["items"]) for c in fake.creates()] == [1, 1]
        assert set(statuses(session, setup.batch_id).values()) == {"sent"}

    def test_transfers_beyond_one_pass_are_made_by_the_next_pass_at_once(
        self,
        session: Session,
        session_factory: sessionmaker[Session],
        clock: FixedClock,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        monkeypatch.setattr(http_rails, "STRIPE_PER_RUN", 1)
        setup = approved_batch(session, clock, ["stripe", "stripe2"])
        send(session, clock, setup.batch_id)
        with serving(FakeStripe()) as fake:
            ran = drain(session, worker(session_factory, clock, stripe_url=fake.url))
        assert len(fake.transfers) == 2 and ran >= 2  # two passes, without waiting for a backoff
        assert set(statuses(session, setup.batch_id).values()) == {"paid"}


class TestFileRails:
    def test_sepa_partners_get_one_stored_pain001_file_and_are_sent(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = approved_batch(session, clock, ["sepa", "sepa2"])
        send(session, clock, setup.batch_id)
        drain(session, worker(session_factory, clock))
        (file,) = session.scalars(select(PayoutFile))
        assert file.format == "sepa" and file.item_count == 2 and file.control_sum == 2_000 + 4_000
        assert "<CtrlSum>60.00</CtrlSum>" in file.content and "Elodie Cafe SARL" in file.content
        assert set(statuses(session, setup.batch_id).values()) == {"sent"}
        assert batch_status(session, setup.batch_id) == "sent"
        sepa = session.get(Payout, setup.payouts["sepa"])
        assert sepa is not None and sepa.provider_ref == sepa.id.replace("_", "-")  # the EndToEndId
        assert rails.check_files(session) == []
        assert ties_out(session)
        sent_notices = session.scalars(
            select(OutboxJob.payload).where(OutboxJob.kind == "notify.partner").order_by(OutboxJob.id)
        ).all()
        told = sorted(n["partner_id"] for n in sent_notices if n["kind"] == "payout.sent")
        assert told == sorted(session.get(Payout, p).partner_id for p in setup.payouts.values())  # type: ignore[union-attr]

    def test_ach_partners_get_a_nacha_file(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = approved_batch(session, clock, ["ach"], currency="USD")
        send(session, clock, setup.batch_id)
        drain(session, worker(session_factory, clock))
        (file,) = session.scalars(select(PayoutFile))
        assert file.format == "nacha" and file.control_sum == 2_000
        assert all(len(line) == 94 for line in file.content.splitlines())
        assert set(statuses(session, setup.batch_id).values()) == {"sent"}

    def test_a_tampered_file_is_reported_by_check_files(self, session: Session, clock: FixedClock) -> None:
        setup = approved_batch(session, clock, ["sepa"])
        send(session, clock, setup.batch_id)
        run_send(session, box=BOX, batch_id=setup.batch_id, now=clock.now())
        (file,) = session.scalars(select(PayoutFile))
        file.control_sum += 1
        file.content = file.content.replace("<CtrlSum>20.00</CtrlSum>", "<CtrlSum>20.01</CtrlSum>", 1)
        session.flush()
        problems = verify(session).problems
        assert any("control sum 2001 over 1 item(s), but its payouts add up to 2000 over 1" in p for p in problems)
        assert any("content does not match its SHA-256" in p for p in problems)


CRASH_POINTS = ["after_batch_marked_sending", "after_file_written", "after_provider_call"]


class TestCrashes:
    @pytest.mark.parametrize("point", CRASH_POINTS)
    def test_a_crash_then_a_restart_pays_every_payout_exactly_once(
        self, session: Session, session_factory: sessionmaker[Session], clock: FixedClock, point: str
    ) -> None:
        setup = approved_batch(session, clock, ["sepa", "stripe", "stripe2", "paypal"])
        send(session, clock, setup.batch_id)
        keys_before = {pid: key for pid, key in session.execute(select(Payout.id, Payout.idempotency_key))}
        crashed: list[str] = []

        def crash(at: str) -> None:
            if at == point and not crashed:
                crashed.append(at)
                raise Crash(at)

        with serving(FakeStripe()) as stripe, serving(FakePaypal()) as paypal:
            drain(session, worker(session_factory, clock, stripe_url=stripe.url, paypal_url=paypal.url, crash=crash))
            assert crashed == [point]
            clock.advance(timedelta(hours=1))
            restarted = worker(session_factory, clock, stripe_url=stripe.url, paypal_url=paypal.url)
            drain(session, restarted)
            paypal.item_status = {setup.payouts["paypal"]: "SUCCESS"}
            clock.advance(timedelta(hours=1))
            drain(session, restarted)
        # Exactly one transfer per Stripe payout and one PayPal item, whatever was asked twice.
        assert sorted(t["metadata"]["payout_id"] for t in stripe.transfers) == sorted(
            [setup.payouts["stripe"], setup.payouts["stripe2"]]
        )
        assert [i["sender_item_id"] for b in paypal.batches.values() for i in b["items"]] == [setup.payouts["paypal"]]
        for seen in stripe.posts():
            assert seen.headers["idempotency-key"] == keys_before[seen.form()["metadata[payout_id]"]]
        assert session.scalar(select(func.count()).select_from(PayoutFile)) == 1
        assert {pid: key for pid, key in session.execute(select(Payout.id, Payout.idempotency_key))} == keys_before
        final = statuses(session, setup.batch_id)
        assert final[setup.payouts["sepa"]] == "sent"
        assert {final[setup.payouts[k]] for k in ("stripe", "stripe2", "paypal")} == {"paid"}
        assert paid_lines(session, setup.program_id) == 3
        assert ties_out(session)
