"""Shopify webhooks through HTTP: the HMAC (rotation), replays, bad bodies, and the inbox turning orders,
refunds and app subscriptions into events in any order."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import Customer, Event
from partnerpay.inbox.models import InboxItem
from partnerpay.jobs.models import OutboxJob
from tests.api.at_once import at_once
from tests.api.conftest import Api
from tests.api.shopify_helpers import (
    OTHER_SECRET,
    SECRET,
    SHOP_DOMAIN,
    app_subscription,
    body_of,
    headers,
    order,
    refund,
    run_jobs,
    signature,
)


@dataclass
class Store:
    api: Api
    factory: sessionmaker[Session]
    program_id: str
    partner_id: str
    referral_code: str

    def post(self, body: bytes, sent: dict[str, Any], program_id: str | None = None) -> Any:
        return self.api.client.post(
            f"/api/v1/webhooks/shopify/{program_id or self.program_id}", content=body, headers=sent
        )

    def deliver(
        self, topic: str, payload: dict[str, Any], webhook_id: str | None = None, secret: str | None = SECRET
    ) -> Any:
        body = body_of(payload)
        webhook_id = webhook_id or "wh-" + hashlib.sha256(body).hexdigest()[:12]
        return self.post(body, headers(topic, webhook_id, body, secret))

    def paid(self, webhook_id: str = "wh-paid-1", secret: str = SECRET, **kw: Any) -> Any:
        kw.setdefault("note_attributes", {"partnerpay_ref": self.referral_code})
        return self.deliver("orders/paid", order(**kw), webhook_id, secret)

    def settings(self, **body: Any) -> Any:
        response = self.api.client.put(
            f"/api/v1/programs/{self.program_id}/integrations/shopify", json=body, headers=self.api.headers()
        )
        assert response.status_code == 200, response.text
        return response.json()

    def items(self) -> list[InboxItem]:
        with self.factory() as s:
            return list(s.scalars(select(InboxItem).order_by(InboxItem.received_at, InboxItem.id)).all())

    def item(self, webhook_id: str) -> InboxItem:
        [found] = [i for i in self.items() if i.external_id == webhook_id]
        return found

    def events(self) -> list[Event]:
        with self.factory() as s:
            return list(s.scalars(select(Event).where(Event.program_id == self.program_id).order_by(Event.id)).all())

    def lines(self, event_id: str) -> list[CommissionLine]:
        with self.factory() as s:
            return list(s.scalars(select(CommissionLine).where(CommissionLine.event_id == event_id)).all())

    def customer(self, event: Event) -> str:
        with self.factory() as s:
            found = s.get(Customer, event.customer_id)
            assert found is not None
            return found.external_id

    def work(self) -> int:
        return run_jobs(self.factory, self.api.clock)


def _store(api: Api, factory: sessionmaker[Session], currency: str = "EUR") -> Store:
    program = api.program(currency=currency, hold_days=0)
    partner = api.partner(program["id"])
    store = Store(api, factory, program["id"], partner["id"], partner["referral_code"])
    store.settings(webhook_secret=SECRET)
    return store


@pytest.fixture
def store(api: Api, session_factory: sessionmaker[Session]) -> Store:
    return _store(api, session_factory)


class TestSignature:
    def test_a_signed_paid_order_is_stored_then_processed_into_one_event_net_of_tax(self, store: Store) -> None:
        response = store.paid()
        assert response.status_code == 200, response.text
        assert response.json()["duplicate"] is False
        [item] = store.items()
        assert (item.status, item.kind, item.external_id) == ("received", "orders/paid", "wh-paid-1")
        assert item.headers["x-shopify-shop-domain"] == SHOP_DOMAIN
        assert item.headers["x-shopify-triggered-at"].startswith("2026-01-15")
        assert store.events() == []  # storing is all the request did

        assert store.work() == 1
        [fact] = store.events()
        assert store.item("wh-paid-1").status == "processed" and store.item("wh-paid-1").event_ids == [fact.id]
        assert (fact.type, fact.external_id, fact.amount, fact.currency) == (
            "invoice_paid",
            "shopify-order:450789469",
            10_000,  # "119.00" minus "19.00" tax, in cents
            "EUR",
        )
        assert fact.partner_id == store.partner_id and store.customer(fact) == "207119551"
        [line] = store.lines(fact.id)
        assert line.amount == 2_000  # 20 % of the 100.00 net of tax

    def test_gross_amounts_are_used_when_the_program_counts_tax(self, store: Store) -> None:
        store.settings(net_of_tax=False)
        store.paid()
        store.work()
        assert [e.amount for e in store.events()] == [11_900]

    @pytest.mark.parametrize(
        "bad",
        [
            b"",
            b"garbage",
            b"c2lnbmF0dXJl",  # valid base64, wrong digest
            b"hex",  # the right digest, in hex instead of base64
            "åäö".encode(),  # not even ASCII
        ],
    )
    def test_a_bad_signature_is_400_counted_and_stores_nothing(self, store: Store, bad: bytes) -> None:
        body = body_of(order())
        if bad == b"hex":
            bad = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest().encode()
        sent: dict[str, Any] = {**headers("orders/paid", "wh-bad", body), "X-Shopify-Hmac-Sha256": bad}
        response = store.post(body, sent)
        assert response.status_code == 400, response.text
        error = response.json()["error"]
        assert error["code"] == "bad_signature" and error["field"] == "X-Shopify-Hmac-Sha256"
        assert store.items() == []
        health = store.api.get(f"/programs/{store.program_id}/integrations/shopify").json()
        assert health["bad_signatures"] == 1

    def test_a_missing_signature_is_400_naming_the_header(self, store: Store) -> None:
        response = store.deliver("orders/paid", order(), secret=None)
        assert response.status_code == 400 and "missing" in response.json()["error"]["message"]
        assert response.json()["error"]["field"] == "X-Shopify-Hmac-Sha256"
        assert store.items() == []

    def test_another_secret_or_a_changed_body_is_refused(self, store: Store) -> None:
        assert store.paid(secret=OTHER_SECRET).status_code == 400
        body = body_of(order())
        sent = headers("orders/paid", "wh-changed", body)
        assert store.post(body.replace(b"119.00", b"999.00"), sent).status_code == 400
        assert store.items() == []

    def test_after_rotation_the_old_secret_works_for_its_hour_then_not(self, store: Store) -> None:
        # Shopify may take up to an hour to sign with a new client secret (PROVIDERS.md §3).
        shown = store.settings(webhook_secret=OTHER_SECRET, previous_secret_hours=1)
        assert len(shown["webhook_secrets"]) == 2
        assert store.paid("wh-a", SECRET, order_id=1).status_code == 200
        assert store.paid("wh-b", OTHER_SECRET, order_id=2).status_code == 200
        store.api.clock.advance(timedelta(hours=1, seconds=1))
        assert store.paid("wh-c", SECRET, order_id=3).status_code == 400
        assert store.paid("wh-d", OTHER_SECRET, order_id=4).status_code == 200
        assert sorted(i.external_id for i in store.items()) == ["wh-a", "wh-b", "wh-d"]

    def test_a_program_without_a_secret_refuses_everything(self, store: Store) -> None:
        other = store.api.program(name="No shopify")
        body = body_of(order())
        sent = headers("orders/paid", "wh-1", body)
        response = store.post(body, sent, program_id=other["id"])
        assert response.status_code == 400 and "no Shopify client secret" in response.json()["error"]["message"]
        assert store.post(body, sent, program_id="prg_nope").status_code == 404


class TestDeliveries:
    def test_a_retry_with_the_same_webhook_id_is_200_and_writes_nothing(self, store: Store) -> None:
        first = store.paid()
        store.api.clock.advance(timedelta(minutes=10))
        again = store.paid()
        assert again.status_code == 200 and again.json() == {**first.json(), "duplicate": True}
        assert len(store.items()) == 1
        with store.factory() as s:
            assert s.scalar(select(func.count()).select_from(OutboxJob)) == 1
        store.work()
        store.paid()
        assert store.work() == 0 and len(store.events()) == 1

    def test_the_same_order_under_another_webhook_id_makes_no_second_event(self, store: Store) -> None:
        # Headers are not signed: the event's identity comes from the signed body (the order id).
        store.paid("wh-1")
        store.paid("wh-2")
        store.work()
        assert {i.status for i in store.items()} == {"processed"}
        [fact] = store.events()
        assert store.item("wh-2").event_ids == [fact.id]

    def test_an_oversized_body_is_413(self, store: Store) -> None:
        response = store.paid(note_attributes={"padding": "x" * (1024 * 1024)})
        assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"
        assert store.items() == []

    def test_malformed_json_with_a_valid_signature_is_stored_as_failed_with_the_reason(self, store: Store) -> None:
        body = b'{"id": 450789469, "total_price": "119.00", '
        response = store.post(body, headers("orders/paid", "wh-broken", body))
        assert response.status_code == 200  # the same bytes would come again: a retry cannot help
        [item] = store.items()
        assert item.status == "failed" and "not JSON" in (item.last_error or "")
        assert item.body == body.decode()
        assert store.post(body, headers("orders/paid", "wh-broken", body)).json()["duplicate"] is True
        assert store.work() == 0

    def test_a_delivery_without_a_webhook_id_is_keyed_by_its_body(self, store: Store) -> None:
        body = body_of(order())
        first = store.post(body, headers("orders/paid", None, body))
        again = store.post(body, headers("orders/paid", None, body))
        assert first.status_code == again.status_code == 200
        assert again.json()["duplicate"] is True
        [item] = store.items()
        assert item.external_id.startswith("body:")

    def test_an_unknown_topic_is_stored_as_ignored(self, store: Store) -> None:
        response = store.deliver("products/update", {"id": 632910392, "title": "Mug"}, "wh-product")
        assert response.status_code == 200
        [item] = store.items()
        assert item.status == "ignored" and "products/update" in (item.note or "")
        assert store.work() == 0

    def test_a_currency_the_program_does_not_pay_in_fails_the_item_naming_currency(self, store: Store) -> None:
        store.paid(currency="USD")
        store.work()
        [item] = store.items()
        assert item.status == "failed" and "pays in EUR" in (item.last_error or "")
        assert "(field currency)" in (item.last_error or "")
        assert store.events() == []

    @pytest.mark.parametrize(
        ("total", "field"),
        [("119.005", "total_price"), ("a lot", "total_price"), (119.0, "total_price")],
    )
    def test_money_that_is_not_an_exact_decimal_string_fails_the_item(
        self, store: Store, total: Any, field: str
    ) -> None:
        store.paid(total_price=total)
        store.work()
        [item] = store.items()
        assert item.status == "failed" and f"(field {field})" in (item.last_error or "")
        assert store.events() == []


class TestOrders:
    def test_yen_have_no_decimals(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        store = _store(api, session_factory, currency="JPY")
        store.paid("wh-jpy", total_price="11900", total_tax="1082", currency="JPY")
        store.paid("wh-jpy-cents", order_id=2, total_price="11900.50", total_tax="0", currency="JPY")
        store.work()
        [fact] = store.events()
        assert (fact.amount, fact.currency) == (10_818, "JPY")
        failed = store.item("wh-jpy-cents")
        assert failed.status == "failed" and "more decimals than JPY allows" in (failed.last_error or "")

    def test_a_discount_code_mapped_to_a_coupon_attributes_the_order_to_its_partner(self, store: Store) -> None:
        other = store.api.partner(store.program_id, name="Coupon Partner")
        response = store.api.post(
            "/coupons",
            {
                "program_id": store.program_id,
                "partner_id": other["id"],
                "code": "SPRING10",
                "source": "shopify",
                "provider_id": "507328175",
            },
        )
        assert response.status_code == 201, response.text
        store.paid(note_attributes={}, discount_codes=["WELCOME", "spring10"])
        store.work()
        [fact] = store.events()
        assert fact.partner_id == other["id"]
        [line] = store.lines(fact.id)
        assert (line.partner_id, line.amount) == (other["id"], 2_000)

    def test_the_landing_page_ref_names_the_click(self, store: Store) -> None:
        store.paid(note_attributes={}, landing_site="/products/mug?utm_source=x&ref=clk_9f8e7d6c5b4a")
        store.work()
        [fact] = store.events()
        assert fact.click_id == "clk_9f8e7d6c5b4a"

    def test_a_referral_code_in_the_landing_page_attributes_the_order(self, store: Store) -> None:
        store.paid(note_attributes={}, landing_site=f"/?ref={store.referral_code}")
        store.work()
        [fact] = store.events()
        assert fact.partner_id == store.partner_id

    def test_a_guest_order_is_known_by_its_email(self, store: Store) -> None:
        store.paid(customer_id=None, email="Guest@Mail.example.com")
        store.work()
        [fact] = store.events()
        assert store.customer(fact) == "guest@mail.example.com"


class TestRefunds:
    def test_a_refund_before_its_order_waits_then_applies(self, store: Store) -> None:
        store.deliver("refunds/create", refund(), "wh-refund")
        store.work()
        [waiting] = store.items()
        assert (waiting.status, waiting.waiting_for) == ("waiting", "shopify-order:450789469")

        store.paid()
        store.work()  # the order, then the refund it woke
        assert {i.external_id: i.status for i in store.items()} == {"wh-refund": "processed", "wh-paid-1": "processed"}
        by_type = {e.type: e for e in store.events()}
        assert by_type["refund"].external_id == "shopify-refund:509562969"
        assert by_type["refund"].amount == 5_000  # half of the 119.00 gross is half of the 100.00 net
        assert by_type["refund"].original_event_id == by_type["invoice_paid"].id
        assert [line.amount for line in store.lines(by_type["refund"].id)] == [-1_000]

    @pytest.mark.parametrize("arrival", [("wh-r1", "wh-r2", "wh-r3"), ("wh-r3", "wh-r2", "wh-r1")])
    def test_partial_refunds_are_proportional_and_add_up_to_the_net_in_any_order(
        self, store: Store, arrival: tuple[str, str, str]
    ) -> None:
        store.paid()
        store.work()
        # Rounded one by one, the tax-free shares of these three would be 8.58 + 9.61 + 81.82 = 100.01:
        # one cent more than the order's net.
        refunds = {
            "wh-r1": refund(1, amounts=("10.21",)),
            "wh-r2": refund(2, amounts=("11.43",)),
            "wh-r3": refund(3, amounts=("50.00", "47.36")),
        }
        for webhook_id in arrival:
            store.deliver("refunds/create", refunds[webhook_id], webhook_id)
            store.work()
        assert {i.status for i in store.items()} == {"processed"}
        amounts = {e.external_id: e.amount for e in store.events() if e.type == "refund"}
        assert sum(amounts.values()) == 10_000  # all of 119.00 back: exactly the 100.00 net, no cent more
        first = f"shopify-refund:{arrival[0][-1]}"
        assert amounts[first] == {"1": 858, "3": 8_182}[first[-1]]  # the first one's own share, rounded half up

    def test_a_refund_without_money_moved_is_ignored(self, store: Store) -> None:
        store.paid()
        store.deliver("refunds/create", refund(amounts=("59.50",), status="failure"), "wh-failed-refund")
        store.work()
        item = store.item("wh-failed-refund")
        assert item.status == "ignored" and "moved no money" in (item.note or "")

    def test_a_refund_in_another_currency_than_its_order_fails_naming_the_field(self, store: Store) -> None:
        store.paid()
        store.deliver("refunds/create", refund(currency="USD"), "wh-usd-refund")
        store.work()
        item = store.item("wh-usd-refund")
        assert item.status == "failed" and "(field transactions[0].currency)" in (item.last_error or "")


class TestAppSubscriptions:
    def test_an_active_subscription_signs_the_shop_up_and_a_cancelled_one_ends_it(self, store: Store) -> None:
        store.deliver("app_subscriptions/update", app_subscription("PENDING"), "wh-s0")
        store.deliver("app_subscriptions/update", app_subscription("ACTIVE"), "wh-s1")
        store.work()
        store.deliver("app_subscriptions/update", app_subscription("CANCELLED"), "wh-s2")
        store.deliver("app_subscriptions/update", app_subscription("EXPIRED"), "wh-s3")
        store.work()
        statuses = {i.external_id: (i.status, i.note or "") for i in store.items()}
        assert statuses["wh-s0"][0] == "ignored" and "PENDING" in statuses["wh-s0"][1]
        assert statuses["wh-s1"][0] == statuses["wh-s2"][0] == statuses["wh-s3"][0] == "processed"
        facts = store.events()
        assert sorted(e.type for e in facts) == ["signup", "subscription_canceled"]
        assert {store.customer(e) for e in facts} == {"gid://shopify/Shop/548380009"}
        canceled = next(e for e in facts if e.type == "subscription_canceled")
        assert (canceled.metadata_json or {})["shop_domain"] == SHOP_DOMAIN

    def test_without_a_shop_id_in_the_body_the_shop_domain_header_names_the_shop(self, store: Store) -> None:
        store.deliver("app_subscriptions/update", app_subscription("ACTIVE", shop_id=None), "wh-s1")
        store.work()
        [fact] = store.events()
        assert (fact.type, store.customer(fact)) == ("signup", SHOP_DOMAIN)


class TestConcurrentDuplicates:
    def test_sixteen_simultaneous_deliveries_of_one_webhook_store_one_item_and_one_fact(self, store: Store) -> None:
        body = body_of(order(note_attributes={"partnerpay_ref": store.referral_code}))
        sent = headers("orders/paid", "wh-burst", body)
        assert sent["X-Shopify-Hmac-Sha256"] == signature(body)
        results = at_once(lambda: store.post(body, sent))
        assert sorted(r.status_code for r in results) == [200] * 16
        assert sorted(r.json()["duplicate"] for r in results) == [False] + [True] * 15
        assert len({r.json()["id"] for r in results}) == 1
        assert len(store.items()) == 1
        store.work()
        assert len(store.events()) == 1
