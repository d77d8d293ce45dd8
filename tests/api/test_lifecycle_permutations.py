"""A customer's four-event life (invoice, partial refund, churn, re-subscription) delivered by Stripe in
every one of the 24 orders: the same events, commissions, clawbacks and customer record every time.

The refund arrives before its invoice in half the orders (it waits and is woken), and the cancellation
before the payment it follows in others; nothing may be lost or counted twice.
"""

from __future__ import annotations

import itertools
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import Customer, Event
from partnerpay.inbox.models import InboxItem
from tests.api.conftest import Api
from tests.api.stripe_helpers import SECRET, body_of, charge, event, header, invoice, run_jobs

DAY = 86_400
T = 1_768_478_400


def _life(ref: str) -> dict[str, dict[str, Any]]:
    first = invoice("in_1", charge="ch_1", metadata={"partnerpay_ref": ref})
    first["status_transitions"] = {"paid_at": T}
    again = invoice("in_2", charge="ch_2", amount_paid=6_000, tax=1_000)
    again["status_transitions"] = {"paid_at": T + 40 * DAY}
    sub = {
        "id": "sub_1",
        "object": "subscription",
        "customer": "cus_A",
        "status": "canceled",
        "canceled_at": T + 20 * DAY,
    }
    return {
        "invoice": event("evt_inv", "invoice.paid", first, created=T),
        "refund": event("evt_ref", "charge.refunded", charge("ch_1", refunded=3_000), created=T + 5 * DAY),
        "churn": event("evt_churn", "customer.subscription.deleted", sub, created=T + 20 * DAY),
        "resubscribe": event("evt_again", "invoice.paid", again, created=T + 40 * DAY),
    }


def _outcome(api: Api, factory: sessionmaker[Session], order: tuple[str, ...]) -> dict[str, Any]:
    program = api.program(currency="EUR", hold_days=0, default_percent_bp=2_000)
    partner = api.partner(program["id"])
    put = api.client.put(
        f"/api/v1/programs/{program['id']}/integrations/stripe", json={"webhook_secret": SECRET}, headers=api.headers()
    )
    assert put.status_code == 200, put.text
    life = _life(partner["referral_code"])
    now = int(api.clock.now().timestamp())
    for name in order:
        body = body_of(life[name])
        answer = api.client.post(
            f"/api/v1/webhooks/stripe/{program['id']}",
            content=body,
            headers={"Stripe-Signature": header(body, now), "Content-Type": "application/json"},
        )
        assert answer.status_code == 200, answer.text
        run_jobs(factory, api.clock)  # processed as it arrives, as a worker would
    while run_jobs(factory, api.clock):
        pass
    with factory() as s:
        items = s.scalars(select(InboxItem).where(InboxItem.program_id == program["id"])).all()
        events = s.scalars(select(Event).where(Event.program_id == program["id"])).all()
        by_id = {e.id: e.external_id for e in events}
        lines = s.scalars(select(CommissionLine).where(CommissionLine.program_id == program["id"])).all()
        customer = s.scalar(select(Customer).where(Customer.program_id == program["id"]))
        assert customer is not None
        return {
            "items": sorted((i.external_id, i.status) for i in items),
            "events": sorted((e.type, e.external_id, e.amount, e.partner_id == partner["id"]) for e in events),
            "lines": sorted((ln.kind, by_id[ln.event_id or ""], ln.amount) for ln in lines),
            "customer": (customer.status, customer.lifetime_revenue, customer.first_paid_at, customer.last_event_at),
        }


def test_every_order_of_invoice_refund_churn_and_resubscription_gives_the_same_result(
    api: Api, session_factory: sessionmaker[Session]
) -> None:
    orders = list(itertools.permutations(["invoice", "refund", "churn", "resubscribe"]))
    assert len(orders) == 24
    first = _outcome(api, session_factory, orders[0])
    # What the life means, worked out by hand: 100.00 net paid, 30.00 of 120.00 gross refunded (25.00 net),
    # cancelled, then 50.00 net paid again; 20 % of each payment, 20 % of the refund clawed back.
    assert first["events"] == [
        ("invoice_paid", "in_1", 10_000, True),
        ("invoice_paid", "in_2", 5_000, True),
        ("refund", "evt_ref", 2_500, True),
        ("subscription_canceled", "sub_1", None, True),
    ]
    assert first["lines"] == [
        ("clawback", "evt_ref", -500),
        ("commission", "in_1", 2_000),
        ("commission", "in_2", 1_000),
    ]
    assert first["customer"][:2] == ("active", 12_500)
    assert all(status == "processed" for _, status in first["items"])
    for order in orders[1:]:
        assert _outcome(api, session_factory, order) == first, order
