"""The walking skeleton over HTTP: event → line → approval → run → batch → export → paid → verify."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from typing import Any

from tests.api.conftest import Api
from tests.conftest import T0


def invoice(program_id: str, external_id: str, customer: str, amount: int, **extra: Any) -> dict[str, Any]:
    return {
        "program_id": program_id,
        "type": "invoice_paid",
        "external_id": external_id,
        "occurred_at": T0.isoformat(),
        "customer_external_id": customer,
        "amount": amount,
        "currency": "EUR",
        **extra,
    }


class TestSkeletonPath:
    def test_event_to_paid_batch_ties_out_and_a_refund_after_payment_is_netted(self, api: Api) -> None:
        program = api.program(hold_days=30, default_percent_bp=2000)
        acme = api.partner(program["id"], "Acme Media")
        beta = api.partner(program["id"], "Beta Blog")

        r = api.post("/events", invoice(program["id"], "inv_1", "cus_a", 120_000, referral_code=acme["referral_code"]))
        assert r.status_code == 201, r.text
        line = r.json()["commissions"][0]
        assert line["amount"] == 24_000 and line["status"] == "pending" and line["currency"] == "EUR"
        assert "20 % of €1,200.00 invoice inv_1" in line["explanation"]
        assert line["hold_until"].startswith((T0 + timedelta(days=30)).date().isoformat())
        r = api.post("/events", invoice(program["id"], "inv_2", "cus_b", 50_005, partner_id=beta["id"]))
        beta_line = r.json()["commissions"][0]
        assert beta_line["amount"] == 10_001  # 20 % of 500.05 = 100.01

        assert api.post("/commissions/approve", {"ids": [line["id"], beta_line["id"]]}).status_code == 200
        # Still on hold: a run now pays nothing.
        early = api.post("/payout-runs", {"program_id": program["id"]})
        assert early.status_code == 201 and early.json()["payouts"] == [] and early.json()["batch_id"] is None

        api.clock.advance(timedelta(days=31))
        balance = api.get(f"/partners/{acme['id']}/balance").json()
        assert balance["payable"] == 24_000 and balance["pending"] == 0
        run = api.post("/payout-runs", {"program_id": program["id"]}).json()
        assert {(p["partner_id"], p["amount"]) for p in run["payouts"]} == {(acme["id"], 24_000), (beta["id"], 10_001)}
        again = api.post("/payout-runs", {"program_id": program["id"]}).json()
        assert again["payouts"] == [], "a line is in at most one payout"

        batch = api.get(f"/payout-batches/{run['batch_id']}").json()
        assert batch["total"] == 34_001 and batch["payout_count"] == 2 and batch["status"] == "draft"
        export = api.client.get(f"/api/v1/payout-batches/{run['batch_id']}/export?format=csv", headers=api.headers())
        rows = list(csv.DictReader(io.StringIO(export.text)))
        assert sum(int(row["amount_minor"]) for row in rows) == 34_001
        assert {row["amount"] for row in rows} == {"240.00", "100.01"}

        assert api.post(f"/payout-batches/{run['batch_id']}/approve").json()["status"] == "approved"
        paid = api.post(f"/payout-batches/{run['batch_id']}/mark-paid").json()
        assert paid["status"] == "paid" and {p["status"] for p in paid["payouts"]} == {"paid"}

        # Refund half of the paid invoice: a negative line, payable at once, netted by the next run.
        refund = api.post(
            "/events",
            {
                "program_id": program["id"],
                "type": "refund",
                "external_id": "re_1",
                "occurred_at": api.clock.now().isoformat(),
                "customer_external_id": "cus_a",
                "amount": 60_000,
                "currency": "EUR",
                "original_external_id": "inv_1",
            },
        )
        assert refund.status_code == 201, refund.text
        claw = refund.json()["commissions"][0]
        assert claw["amount"] == -12_000 and claw["reverses_line_id"] == line["id"] and claw["status"] == "approved"
        assert api.get(f"/partners/{acme['id']}/balance").json()["clawback_carry"] == -12_000

        r = api.post("/events", invoice(program["id"], "inv_3", "cus_a", 100_000))  # attributed by the customer
        new_line = r.json()["commissions"][0]
        assert new_line["partner_id"] == acme["id"] and new_line["amount"] == 20_000
        api.post("/commissions/approve", {"ids": [new_line["id"]]})
        api.clock.advance(timedelta(days=31))
        netted = api.post("/payout-runs", {"program_id": program["id"]}).json()
        assert [(p["partner_id"], p["amount"], p["line_count"]) for p in netted["payouts"]] == [(acme["id"], 8_000, 2)]

        report = api.get("/ledger/verify").json()
        assert report["ok"] is True, report["problems"]
        assert report["audit_ok"] and report["entries_checked"] > 0 and report["accounts_checked"] >= 5
