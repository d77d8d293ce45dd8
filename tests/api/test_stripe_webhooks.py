"""Stripe webhooks through HTTP: signatures (tolerance, rotation), replays, bad bodies, and the inbox
turning deliveries into events in any order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import Customer, Event
from partnerpay.inbox.models import InboxItem, ProgramIntegration
from partnerpay.inbox.service import retry_items
from partnerpay.jobs.models import OutboxJob
from tests.api.at_once import at_once
from tests.api.conftest import Api
from tests.api.stripe_helpers import (
    OTHER_SECRET,
    SECRET,
    body_of,
    charge,
    event,
    header,
    invoice,
    run_jobs,
)


@dataclass
class Shop:
    api: Api
    factory: sessionmaker[Session]
    program_id: str
    partner_id: str
    referral_code: str

    @property
    def now(self) -> int:
        return int(self.api.clock.now().timestamp())

    def post(self, body: bytes, sig: str | None, program_id: str | None = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if sig is not None:
            headers["Stripe-Signature"] = sig
        return self.api.client.post(
            f"/api/v1/webhooks/stripe/{program_id or self.program_id}", content=body, headers=headers
        )

    def deliver(self, payload: dict[str, Any], *secrets: str, t: int | None = None) -> Any:
        body = body_of(payload)
        return self.post(body, header(body, self.now if t is None else t, *secrets))

    def items(self) -> list[InboxItem]:
        with self.factory() as s:
            return list(s.scalars(select(InboxItem).order_by(InboxItem.received_at, InboxItem.id)).all())

    def events(self) -> list[Event]:
        with self.factory() as s:
            return list(s.scalars(select(Event).where(Event.program_id == self.program_id).order_by(Event.id)).all())

    def work(self) -> int:
        return run_jobs(self.factory, self.api.clock)


@pytest.fixture
def shop(api: Api, session_factory: sessionmaker[Session]) -> Shop:
    program = api.program(currency="EUR", hold_days=0)
    partner = api.partner(program["id"])
    response = api.client.put(
        f"/api/v1/programs/{program['id']}/integrations/stripe",
        json={"webhook_secret": SECRET},
        headers=api.headers(),
    )
    assert response.status_code == 200, response.text
    return Shop(api, session_factory, program["id"], partner["id"], partner["referral_code"])


def paid(shop: Shop, evt: str = "evt_paid_1", **kw: Any) -> dict[str, Any]:
    kw.setdefault("metadata", {"partnerpay_ref": shop.referral_code})
    return event(evt, "invoice.paid", invoice(**kw))


class TestSignature:
    def test_a_signed_invoice_is_stored_then_processed_into_one_event_net_of_tax(self, shop: Shop) -> None:
        response = shop.deliver(paid(shop))
        assert response.status_code == 200, response.text
        assert response.json()["duplicate"] is False
        [item] = shop.items()
        assert (item.status, item.kind, item.external_id) == ("received", "invoice.paid", "evt_paid_1")
        assert shop.events() == []  # storing is all the request did

        assert shop.work() == 1
        [item] = shop.items()
        [fact] = shop.events()
        assert item.status == "processed" and item.event_ids == [fact.id]
        assert (fact.type, fact.external_id, fact.amount, fact.currency) == ("invoice_paid", "in_1", 10_000, "EUR")
        assert fact.partner_id == shop.partner_id
        with shop.factory() as s:
            [line] = s.scalars(select(CommissionLine).where(CommissionLine.event_id == fact.id)).all()
        assert line.amount == 2_000  # 20 % of the 100.00 net of tax

    def test_gross_amounts_are_used_when_the_program_counts_tax(self, shop: Shop) -> None:
        shop.api.client.put(
            f"/api/v1/programs/{shop.program_id}/integrations/stripe",
            json={"net_of_tax": False},
            headers=shop.api.headers(),
        )
        shop.deliver(paid(shop))
        shop.work()
        assert [e.amount for e in shop.events()] == [12_000]

    @pytest.mark.parametrize("sig", ["t=1,v1=00", "v1=abc", "t=abc,v1=abc", "garbage", ""])
    def test_a_bad_signature_is_400_counted_and_stores_nothing(self, shop: Shop, sig: str) -> None:
        response = shop.post(body_of(paid(shop)), sig)
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "bad_signature"
        assert shop.items() == []
        health = shop.api.get(f"/programs/{shop.program_id}/integrations/stripe").json()
        assert health["bad_signatures"] == 1

    def test_a_missing_signature_is_400(self, shop: Shop) -> None:
        response = shop.post(body_of(paid(shop)), None)
        assert response.status_code == 400 and "missing" in response.json()["error"]["message"]
        assert shop.items() == []

    def test_a_signature_with_another_secret_or_a_changed_body_is_refused(self, shop: Shop) -> None:
        assert shop.deliver(paid(shop), OTHER_SECRET).status_code == 400
        body = body_of(paid(shop))
        sig = header(body, shop.now)
        assert shop.post(body.replace(b"12000", b"99000"), sig).status_code == 400
        assert shop.items() == []

    def test_only_v1_counts_a_matching_v0_is_ignored(self, shop: Shop) -> None:
        body = body_of(paid(shop))
        good = header(body, shop.now).split(",v1=")[1]
        assert shop.post(body, f"t={shop.now},v0={good}").status_code == 400

    @pytest.mark.parametrize(("offset", "status"), [(-300, 200), (300, 200), (-301, 400), (301, 400)])
    def test_the_timestamp_may_be_five_minutes_off_either_way_and_no_more(
        self, shop: Shop, offset: int, status: int
    ) -> None:
        assert shop.deliver(paid(shop), t=shop.now + offset).status_code == status

    def test_any_of_several_v1_values_may_match(self, shop: Shop) -> None:
        assert shop.deliver(paid(shop), OTHER_SECRET, SECRET).status_code == 200

    def test_after_rotation_the_old_secret_works_for_the_grace_period_then_not(self, shop: Shop) -> None:
        response = shop.api.client.put(
            f"/api/v1/programs/{shop.program_id}/integrations/stripe",
            json={"webhook_secret": OTHER_SECRET, "previous_secret_hours": 24},
            headers=shop.api.headers(),
        )
        assert len(response.json()["webhook_secrets"]) == 2
        assert shop.deliver(paid(shop, "evt_a"), SECRET).status_code == 200
        assert shop.deliver(paid(shop, "evt_b"), OTHER_SECRET).status_code == 200
        shop.api.clock.advance(timedelta(hours=24, seconds=1))
        assert shop.deliver(paid(shop, "evt_c"), SECRET).status_code == 400
        assert shop.deliver(paid(shop, "evt_d"), OTHER_SECRET).status_code == 200

    def test_a_program_without_a_secret_refuses_everything(self, shop: Shop, api: Api) -> None:
        other = api.program(name="No stripe")
        body = body_of(paid(shop))
        response = shop.post(body, header(body, shop.now), program_id=other["id"])
        assert response.status_code == 400 and "no Stripe webhook secret" in response.json()["error"]["message"]
        assert shop.post(body, header(body, shop.now), program_id="prg_nope").status_code == 404


class TestDeliveries:
    def test_a_replay_is_200_and_writes_nothing(self, shop: Shop) -> None:
        first = shop.deliver(paid(shop))
        shop.api.clock.advance(timedelta(minutes=10))  # Stripe re-signs a redelivery with a new t
        again = shop.deliver(paid(shop))
        assert again.status_code == 200 and again.json() == {**first.json(), "duplicate": True}
        assert len(shop.items()) == 1
        with shop.factory() as s:
            assert s.scalar(select(func.count()).select_from(OutboxJob)) == 1
        shop.work()
        shop.deliver(paid(shop))
        assert shop.work() == 0 and len(shop.events()) == 1

    def test_an_oversized_body_is_413(self, shop: Shop) -> None:
        payload = paid(shop)
        payload["data"]["object"]["metadata"]["padding"] = "x" * (1024 * 1024)
        response = shop.deliver(payload)
        assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
        assert shop.items() == []

    def test_malformed_json_with_a_valid_signature_is_stored_as_failed_with_the_reason(self, shop: Shop) -> None:
        body = b'{"id": "evt_broken", "type": "invoice.paid", '
        response = shop.post(body, header(body, shop.now))
        assert response.status_code == 200  # the same bytes would come again: a retry cannot help
        [item] = shop.items()
        assert item.status == "failed" and "not JSON" in (item.last_error or "")
        assert item.body == body.decode()
        assert shop.post(body, header(body, shop.now)).json()["duplicate"] is True

    def test_an_unknown_type_is_stored_as_ignored(self, shop: Shop) -> None:
        response = shop.deliver(event("evt_x", "balance.available", {"object": "balance"}))
        assert response.status_code == 200
        [item] = shop.items()
        assert item.status == "ignored" and "balance.available" in (item.note or "")
        assert shop.work() == 0

    def test_a_currency_the_program_does_not_pay_in_fails_the_item_with_a_clear_error(self, shop: Shop) -> None:
        shop.deliver(paid(shop, currency="usd"))
        shop.work()
        [item] = shop.items()
        assert item.status == "failed" and "pays in EUR" in (item.last_error or "")
        assert "currency" in (item.last_error or "")
        assert shop.events() == []


class TestOrder:
    def test_a_refund_before_its_invoice_waits_then_applies(self, shop: Shop) -> None:
        shop.deliver(event("evt_refund", "charge.refunded", charge(refunded=6_000)))
        shop.work()
        [refund_item] = shop.items()
        assert (refund_item.status, refund_item.waiting_for) == ("waiting", "in_1")

        shop.deliver(paid(shop))
        shop.work()  # the invoice, then the refund it woke
        statuses = {i.external_id: i.status for i in shop.items()}
        assert statuses == {"evt_refund": "processed", "evt_paid_1": "processed"}
        by_type = {e.type: e for e in shop.events()}
        assert by_type["refund"].amount == 5_000  # half the gross is half the net
        assert by_type["refund"].original_event_id == by_type["invoice_paid"].id

    def test_two_partial_refunds_record_only_what_is_new_each_time(self, shop: Shop) -> None:
        shop.deliver(paid(shop))
        shop.deliver(event("evt_r1", "charge.refunded", charge(refunded=3_000)))
        shop.work()
        shop.deliver(event("evt_r2", "charge.refunded", charge(refunded=12_000)))
        shop.work()
        refunds = [e.amount for e in shop.events() if e.type == "refund"]
        assert sorted(refunds) == [2_500, 7_500]  # 30.00 then the remaining 90.00 of 120.00 gross, net of tax

    def test_partial_refunds_out_of_order_still_add_up_to_the_total(self, shop: Shop) -> None:
        shop.deliver(paid(shop))
        shop.work()
        shop.deliver(event("evt_r2", "charge.refunded", charge(refunded=12_000)))
        shop.work()
        shop.deliver(event("evt_r1", "charge.refunded", charge(refunded=3_000)))
        shop.work()
        assert sum(e.amount or 0 for e in shop.events() if e.type == "refund") == 10_000
        assert {i.external_id: i.status for i in shop.items()}["evt_r1"] == "ignored"

    def test_disputes_subscriptions_and_signups_become_their_events(self, shop: Shop) -> None:
        customer = {
            "id": "cus_A",
            "object": "customer",
            "email": "Buyer@Shop.example",
            "created": 1768470000,
            "metadata": {"partnerpay_ref": shop.referral_code},
        }
        shop.deliver(event("evt_c", "customer.created", customer))
        shop.deliver(paid(shop, metadata={}))
        dispute = {
            "id": "dp_1",
            "object": "dispute",
            "charge": "ch_1",
            "amount": 12_000,
            "currency": "eur",
            "reason": "fraudulent",
            "status": "needs_response",
            "created": 1768480000,
        }
        shop.deliver(event("evt_d", "charge.dispute.created", dispute))
        shop.deliver(event("evt_dw", "charge.dispute.closed", {**dispute, "status": "won"}, created=1768485000))
        sub = {
            "id": "sub_1",
            "object": "subscription",
            "customer": "cus_A",
            "status": "canceled",
            "canceled_at": 1768490000,
        }
        shop.deliver(event("evt_s", "customer.subscription.deleted", sub))
        shop.deliver(
            event(
                "evt_u",
                "customer.subscription.updated",
                {**sub, "status": "active"},
                previous_attributes={"status": "trialing"},
            )
        )
        shop.work()
        shop.work()
        types = sorted((e.type, e.amount) for e in shop.events())
        assert types == [
            ("chargeback", 10_000),
            ("chargeback_reversed", 10_000),  # the dispute was won: the money counts as paid again
            ("invoice_paid", 10_000),
            ("signup", None),
            ("subscription_canceled", None),
            ("subscription_updated", None),
        ]
        assert all(e.partner_id == shop.partner_id for e in shop.events())
        notes = {i.external_id: (i.status, i.note or "") for i in shop.items()}
        assert notes["evt_dw"][0] == "processed"
        # The chargeback took back all it paid, the won dispute gave it back, then the customer canceled.
        updated = next(e for e in shop.events() if e.type == "subscription_updated")
        assert updated.metadata_json is not None and updated.metadata_json["status"] == "active"
        with shop.factory() as s:
            customer_row = s.scalar(select(Customer).where(Customer.external_id == "cus_A"))
            assert customer_row is not None
            assert (customer_row.status, customer_row.lifetime_revenue) == ("canceled", 10_000)

    def test_a_subscription_update_without_a_status_change_is_ignored(self, shop: Shop) -> None:
        sub = {"id": "sub_1", "object": "subscription", "customer": "cus_A", "status": "active"}
        shop.deliver(event("evt_u2", "customer.subscription.updated", sub, previous_attributes={"quantity": 1}))
        shop.work()
        assert {i.external_id: i.status for i in shop.items()}["evt_u2"] == "ignored"
        assert shop.events() == []

    def test_a_failing_item_leaves_no_partial_event_behind_and_can_succeed_on_retry(self, shop: Shop) -> None:
        shop.deliver(paid(shop))
        shop.deliver(event("evt_full", "charge.refunded", charge(refunded=12_000)))
        dispute = {
            "id": "dp_9",
            "object": "dispute",
            "charge": "ch_1",
            "amount": 12_000,
            "currency": "eur",
            "status": "needs_response",
            "created": 1768480000,
        }
        shop.deliver(event("evt_dp", "charge.dispute.created", dispute))
        shop.work()
        failed = {i.external_id: i for i in shop.items()}["evt_dp"]
        assert failed.status == "failed" and "exceeds" in (failed.last_error or "") and failed.attempts == 1
        # The chargeback event was written, then rolled back with the item's savepoint.
        assert "chargeback" not in [e.type for e in shop.events()]
        assert "dp_9" not in [e.external_id for e in shop.events()]

    def test_a_waiting_item_is_processed_again_by_the_sweep(self, shop: Shop) -> None:
        shop.deliver(event("evt_refund", "charge.refunded", charge(refunded=6_000)))
        shop.work()
        with shop.factory() as s:
            assert retry_items(s, actor=SYSTEM, now=shop.api.clock.now(), statuses=["waiting"]) != []
            s.commit()
        assert [i.status for i in shop.items()] == ["received"]
        shop.work()
        [item] = shop.items()
        assert item.status == "waiting" and item.attempts == 2  # still no invoice: waits again, nothing dropped


class TestConcurrentDuplicates:
    def test_sixteen_simultaneous_deliveries_of_one_event_store_one_item_and_one_fact(self, shop: Shop) -> None:
        body = body_of(paid(shop))
        sig = header(body, shop.now)
        results = at_once(lambda: shop.post(body, sig))
        assert sorted(r.status_code for r in results) == [200] * 16
        assert sorted(r.json()["duplicate"] for r in results) == [False] + [True] * 15
        assert len({r.json()["id"] for r in results}) == 1
        assert len(shop.items()) == 1
        shop.work()
        assert len(shop.events()) == 1


class TestIntegrationSettings:
    def test_secrets_are_never_read_back_or_stored_in_clear(
        self, shop: Shop, capsys: pytest.CaptureFixture[str]
    ) -> None:
        api_key = "sk_test_51Qsecretkeyvalue9876"
        put = shop.api.client.put(
            f"/api/v1/programs/{shop.program_id}/integrations/stripe",
            json={"api_key": api_key},
            headers=shop.api.headers(),
        )
        got = shop.api.get(f"/programs/{shop.program_id}/integrations/stripe")
        for response in (put, got):
            assert response.status_code == 200
            assert api_key not in response.text and SECRET not in response.text
        shown = got.json()
        assert shown["api_key"] == "••••9876" and shown["webhook_secrets"][0]["secret"] == "••••" + SECRET[-4:]
        assert shown["webhook_secrets"][0]["expires_at"] is None
        with shop.factory() as s:
            row = s.scalar(select(ProgramIntegration))
            assert row is not None and api_key not in row.sealed and SECRET not in row.sealed
            changes = s.scalars(select(AuditEntry).where(AuditEntry.action == "integration.update")).all()
            audit = " ".join(str(a.after) + str(a.before) for a in changes)
        assert len(changes) == 2 and "••••9876" in audit
        assert api_key not in audit and SECRET not in audit
        captured = capsys.readouterr()
        assert api_key not in captured.out + captured.err and SECRET not in captured.out + captured.err

    def test_an_unknown_field_or_provider_is_a_clear_error(self, shop: Shop) -> None:
        bad = shop.api.client.put(
            f"/api/v1/programs/{shop.program_id}/integrations/stripe",
            json={"webhook_secert": "x"},
            headers=shop.api.headers(),
        )
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "webhook_secert"
        unknown = shop.api.client.put(
            f"/api/v1/programs/{shop.program_id}/integrations/fax", json={}, headers=shop.api.headers()
        )
        assert unknown.status_code == 404
