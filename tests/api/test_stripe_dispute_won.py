"""A Stripe dispute closed as won, through signed deliveries: a chargeback_reversed event reinstates the
chargeback's clawback, whichever of the dispute's events arrives first."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import RefundAllocation
from tests.api.conftest import Api
from tests.api.stripe_helpers import SECRET, event
from tests.api.test_stripe_webhooks import Shop, paid

DISPUTE = {
    "id": "dp_1",
    "object": "dispute",
    "charge": "ch_1",
    "amount": 12_000,
    "currency": "eur",
    "reason": "fraudulent",
    "status": "needs_response",
    "created": 1768480000,
}


@pytest.fixture
def shop(api: Api, session_factory: sessionmaker[Session]) -> Shop:
    """A program paying 20 % by default, with a Stripe webhook secret (as test_stripe_webhooks' shop)."""
    program = api.program(currency="EUR", hold_days=0)
    partner = api.partner(program["id"])
    response = api.client.put(
        f"/api/v1/programs/{program['id']}/integrations/stripe", json={"webhook_secret": SECRET}, headers=api.headers()
    )
    assert response.status_code == 200, response.text
    return Shop(api, session_factory, program["id"], partner["id"], partner["referral_code"])


def lines(shop: Shop) -> list[tuple[str, int]]:
    with shop.factory() as s:
        rows = s.scalars(select(CommissionLine).where(CommissionLine.program_id == shop.program_id)).all()
        return sorted((x.kind, x.amount) for x in rows)


def test_a_won_dispute_reinstates_the_chargebacks_clawback(shop: Shop) -> None:
    shop.deliver(paid(shop))
    shop.deliver(event("evt_d", "charge.dispute.created", DISPUTE))
    shop.work()
    assert lines(shop) == [("clawback", -2_000), ("commission", 2_000)]
    shop.deliver(event("evt_dw", "charge.dispute.closed", {**DISPUTE, "status": "won"}, created=1768490000))
    shop.work()
    assert lines(shop) == [("clawback", -2_000), ("commission", 2_000), ("reinstatement", 2_000)]
    won = next(e for e in shop.events() if e.type == "chargeback_reversed")
    assert (won.external_id, won.amount, won.currency) == ("dp_1:won", 10_000, "EUR")
    with shop.factory() as s:
        assert s.scalar(select(func.sum(RefundAllocation.amount))) == 0
        [claw] = s.scalars(select(CommissionLine).where(CommissionLine.kind == "clawback")).all()
        [back] = s.scalars(select(CommissionLine).where(CommissionLine.kind == "reinstatement")).all()
        assert back.reverses_line_id == claw.id and back.event_id == won.id
    assert {i.external_id: i.status for i in shop.items()}["evt_dw"] == "processed"


def test_a_won_dispute_arriving_first_waits_for_its_chargeback(shop: Shop) -> None:
    shop.deliver(event("evt_dw", "charge.dispute.closed", {**DISPUTE, "status": "won"}, created=1768490000))
    shop.work()
    [item] = shop.items()
    assert (item.status, item.waiting_for) == ("waiting", "dp_1")
    shop.deliver(paid(shop))
    shop.deliver(event("evt_d", "charge.dispute.created", DISPUTE))
    shop.work()
    shop.work()
    assert {i.external_id: i.status for i in shop.items()} == {
        "evt_dw": "processed",
        "evt_paid_1": "processed",
        "evt_d": "processed",
    }
    assert lines(shop) == [("clawback", -2_000), ("commission", 2_000), ("reinstatement", 2_000)]


def test_a_dispute_closed_otherwise_changes_nothing(shop: Shop) -> None:
    shop.deliver(paid(shop))
    shop.deliver(event("evt_d", "charge.dispute.created", DISPUTE))
    shop.deliver(event("evt_dc", "charge.dispute.closed", {**DISPUTE, "status": "warning_closed"}, created=1768490000))
    shop.work()
    assert lines(shop) == [("clawback", -2_000), ("commission", 2_000)]
    item = {i.external_id: i for i in shop.items()}["evt_dc"]
    assert (item.status, item.note) == ("ignored", "dispute closed as warning_closed: nothing changes")
