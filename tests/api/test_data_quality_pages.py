"""The customers pages and the data-quality page: lists and timelines, the audited "Attribute to partner"
form (CSRF, roles, errors at the field), and figures computed from real events, inbox items and refused
deliveries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_api_key
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import Customer
from tests.api import test_pages
from tests.api.stripe_helpers import SECRET, body_of, charge, event, header, invoice, run_jobs
from tests.api.test_pages import World, csrf_of, staff

world = test_pages.world


@dataclass
class Shop:
    world: World
    client: TestClient
    key: str

    def api(self, method: str, path: str, **kw: Any) -> Any:
        return self.client.request(method, f"/api/v1{path}", headers={"Authorization": f"Bearer {self.key}"}, **kw)

    def event(self, external_id: str, customer: str, amount: int = 10_000, **body: Any) -> dict[str, Any]:
        data = {
            "program_id": self.world.program_id,
            "type": "invoice_paid",
            "external_id": external_id,
            "occurred_at": (self.world.clock.now() - timedelta(days=2)).isoformat(),
            "customer_external_id": customer,
            "amount": amount,
            "currency": "EUR",
            **body,
        }
        response = self.api("POST", "/events", json=data)
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    def stripe(self, payload: dict[str, Any], sig: str | None = None) -> Any:
        body = body_of(payload)
        signed = sig if sig is not None else header(body, int(self.world.clock.now().timestamp()))
        return self.client.post(
            f"/api/v1/webhooks/stripe/{self.world.program_id}",
            content=body,
            headers={"Content-Type": "application/json", "Stripe-Signature": signed},
        )

    def customer_id(self, external_id: str) -> str:
        with self.world.factory() as s:
            found = s.scalar(select(Customer.id).where(Customer.external_id == external_id))
            assert found is not None
            return found


@pytest.fixture
def shop(world: World) -> Shop:
    with world.factory() as s:
        _, key = create_api_key(s, actor=SYSTEM, now=world.clock.now())
        s.commit()
    client = world.client()
    shop = Shop(world, client, key)
    response = shop.api("PUT", f"/programs/{world.program_id}/integrations/stripe", json={"webhook_secret": SECRET})
    assert response.status_code == 200, response.text
    return shop


@pytest.fixture
def lost(shop: Shop) -> str:
    """A customer without a partner: two payments (100.00 and 50.00) and nothing else."""
    shop.event("in_l1", "cus_lost", customer_email="lost@nowhere.example")
    shop.event("in_l2", "cus_lost", amount=5_000)
    return shop.customer_id("cus_lost")


def count(world: World, model: Any, *where: Any) -> int:
    with world.factory() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def audited(world: World) -> list[AuditEntry]:
    with world.factory() as s:
        return list(s.scalars(select(AuditEntry).where(AuditEntry.action == "customer.attribute")).all())


class TestCustomerPages:
    def test_the_list_shows_status_partner_and_lifetime_revenue_and_filters_by_no_partner(
        self, world: World, lost: str
    ) -> None:
        client = staff(world, "viewer")
        page = client.get("/customers")
        assert page.status_code == 200
        assert 'href="/customers" aria-current="page">Customers' in page.text
        assert 'href="/data-quality">Data quality' in page.text
        assert "cus_inv_acme" in page.text and "Acme Media" in page.text and "cus_lost" in page.text
        assert 'class="badge badge-' in page.text
        with world.factory() as s:
            acme = s.scalar(select(Customer).where(Customer.external_id == "cus_inv_acme"))
            assert acme is not None
            revenue = acme.lifetime_revenue
        assert f"€{revenue / 100:,.2f}" in page.text  # formatted with its currency, whatever the lifecycle says
        none = client.get("/customers?partner=none")
        assert "cus_lost" in none.text and "cus_inv_acme" not in none.text
        assert f'href="/customers/{lost}#attribute"' in none.text
        assert "cus_lost" in client.get("/customers?q=NOWHERE").text
        bad = client.get("/customers?status=happy")
        assert bad.status_code == 422 and "status must be one of" in bad.text

    def test_a_customer_page_shows_the_timeline_and_offers_attribution_only_without_a_partner(
        self, world: World, shop: Shop, lost: str
    ) -> None:
        client = staff(world, "manager")
        page = client.get(f"/customers/{lost}")
        assert page.status_code == 200
        assert page.text.index("in_l2") < page.text.index("in_l1")  # newest first (same day: by id)
        assert "No partner:" in page.text and f'action="/customers/{lost}/attribute"' in page.text
        attributed = client.get(f"/customers/{shop.customer_id('cus_inv_acme')}")
        assert "Acme Media" in attributed.text and "/attribute" not in attributed.text
        assert "€240.00" in attributed.text  # the commission line under its event
        assert client.get("/customers/cus_nope").status_code == 404


class TestAttributeForm:
    def test_csrf_is_required_and_nothing_is_written_without_it(self, world: World, lost: str) -> None:
        client = staff(world, "manager")
        response = client.post(f"/customers/{lost}/attribute", data={"partner_id": world.beta_id, "reason": "x"})
        assert response.status_code == 403
        assert count(world, AuditEntry, AuditEntry.action == "customer.attribute") == 0

    def test_attributing_earns_the_payments_flashes_and_is_audited(self, world: World, lost: str) -> None:
        client = staff(world, "manager")
        token = csrf_of(client, f"/customers/{lost}")
        lines = count(world, CommissionLine)
        response = client.post(
            f"/customers/{lost}/attribute",
            data={"csrf_token": token, "partner_id": world.beta_id, "reason": "Beta introduced them by email"},
            follow_redirects=False,
        )
        assert response.status_code == 303 and response.headers["location"] == f"/customers/{lost}"
        page = client.get(f"/customers/{lost}")
        assert "now attributed to Beta Blog" in page.text and "€30.00 commission created" in page.text
        assert "Beta introduced them by email" in page.text and "/attribute" not in page.text
        assert count(world, CommissionLine) == lines + 2
        [entry] = audited(world)
        assert entry.actor_type == "staff" and entry.after is not None and entry.after["partner_id"] == world.beta_id

    def test_an_empty_reason_is_shown_at_the_field_and_writes_nothing(self, world: World, lost: str) -> None:
        client = staff(world, "manager")
        token = csrf_of(client, f"/customers/{lost}")
        response = client.post(
            f"/customers/{lost}/attribute", data={"csrf_token": token, "partner_id": world.beta_id, "reason": " "}
        )
        assert response.status_code == 422
        assert 'id="f-reason-error"' in response.text and "a reason is required" in response.text
        assert f'<option value="{world.beta_id}" selected>' in response.text  # the choice is kept
        assert audited(world) == []

    def test_a_viewer_sees_no_form_and_is_refused(self, world: World, lost: str) -> None:
        client = staff(world, "viewer")
        page = client.get(f"/customers/{lost}")
        assert f'action="/customers/{lost}/attribute"' not in page.text and "needs the 'write' scope" in page.text
        token = csrf_of(client, f"/customers/{lost}")
        data = {"csrf_token": token, "partner_id": world.beta_id, "reason": "x"}
        assert client.post(f"/customers/{lost}/attribute", data=data).status_code == 403
        assert audited(world) == []


class TestDataQuality:
    def test_the_page_and_the_api_show_the_same_figures_from_real_rows(
        self, world: World, shop: Shop, lost: str
    ) -> None:
        shop.event("in_old", "cus_old", occurred_at=(world.clock.now() - timedelta(days=120)).isoformat())
        # A Stripe invoice in dollars for a euro program fails; a refund of an unknown invoice waits.
        assert shop.stripe(event("evt_usd", "invoice.paid", invoice("in_usd", currency="usd"))).status_code == 200
        refund = event("evt_ref", "charge.refunded", charge("ch_9", invoice_id="in_9", refunded=10))
        assert shop.stripe(refund).status_code == 200
        run_jobs(world.factory, world.clock)
        for sig in ("t=1,v1=00", "garbage"):
            assert shop.stripe(event("evt_bad", "invoice.paid", invoice("in_bad")), sig=sig).status_code == 400

        figures = shop.api("GET", f"/programs/{world.program_id}/data-quality").json()
        unattributed = figures["unattributed"]
        assert unattributed["count"] == 2 and unattributed["totals"] == [{"currency": "EUR", "amount": 15_000}]
        assert [e["external_id"] for e in unattributed["events"]] == ["in_l2", "in_l1"]  # in_old is 120 days old
        assert (figures["inbox"]["failed"], figures["inbox"]["waiting"]) == (1, 1)
        assert "pays in EUR" in figures["inbox"]["newest_failed"][0]["last_error"]
        health = {p["provider"]: p for p in figures["integrations"]}
        assert set(health) == {"api", "stripe"}
        stripe = health["stripe"]
        assert (stripe["connected"], stripe["deliveries_7d"], stripe["failed_7d"], stripe["error_rate"]) == (
            True, 2, 1, 0.5)  # fmt: skip
        assert stripe["bad_signatures"] == 2 and stripe["last_bad_signature_at"] is not None
        assert stripe["last_delivery_at"] is not None
        assert (health["api"]["connected"], health["api"]["deliveries_7d"], health["api"]["error_rate"]) == (
            False, 3, 0.0)  # fmt: skip

        page = staff(world, "viewer").get("/data-quality")
        assert page.status_code == 200 and 'aria-current="page">Data quality' in page.text
        text = page.text
        assert "€150.00" in text and f'href="/customers/{lost}#attribute"' in text and "in_old" not in text
        assert "pays in EUR" in text and f"/inbox?status=failed&amp;program={world.program_id}" in text
        assert 'id="provider-stripe"' in text and "50.0 %" in text
        stripe_row = text[text.index('id="provider-stripe"') :].split("</tr>")[0]
        assert '<span class="bad">2</span>' in stripe_row

    def test_attributing_takes_the_payments_off_the_page(self, world: World, shop: Shop, lost: str) -> None:
        answer = shop.api("POST", f"/customers/{lost}/attribute", json={"partner_id": world.acme_id, "reason": "call"})
        assert answer.status_code == 200, answer.text
        figures = shop.api("GET", f"/programs/{world.program_id}/data-quality").json()
        assert figures["unattributed"]["count"] == 0 and figures["unattributed"]["totals"] == []
        page = staff(world, "viewer").get("/data-quality")
        assert "Every payment found its partner" in page.text

    def test_a_key_of_another_program_gets_404(self, world: World, shop: Shop) -> None:
        other = shop.api("POST", "/programs", json={"name": "Other", "currency": "EUR", "hold_days": 0}).json()
        with world.factory() as s:
            _, key = create_api_key(s, actor=SYSTEM, now=world.clock.now(), program_id=other["id"])
            s.commit()
        response = shop.client.get(
            f"/api/v1/programs/{world.program_id}/data-quality", headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 404 and response.json()["error"]["field"] == "program_id"
