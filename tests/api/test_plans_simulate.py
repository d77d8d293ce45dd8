"""The backtest over HTTP and in the console: POST /api/v1/plans/{id}/simulate returns per partner and in total
what the draft would have paid vs what was made; another program's plan and a partner session get 404; the
plan's Simulate page shows the same table; nothing is written."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.schemas import EventIn
from partnerpay.events.service import record_event
from partnerpay.plans.service import create_plan
from tests.api import test_pages
from tests.api.conftest import Api
from tests.api.test_deals_api import portal
from tests.api.test_pages import World, staff

world = test_pages.world
WINDOW = {"from": "2026-01-01", "to": "2026-01-31"}


def invoice(factory: sessionmaker[Session], api: Api, program_id: str, partner_id: str, n: int, amount: int) -> None:
    with factory() as s:
        data = EventIn(
            program_id=program_id,
            type="invoice_paid",
            external_id=f"in{n}",
            occurred_at=api.clock.now() - timedelta(days=n),
            customer_external_id=f"c{n}",
            partner_id=partner_id,
            amount=amount,
            currency="EUR",
        )
        record_event(s, actor=SYSTEM, data=data, now=api.clock.now())
        s.commit()


@pytest.fixture
def setup(api: Api, session_factory: sessionmaker[Session]) -> dict[str, Any]:
    """A program at the default 20 %, two partners with paid invoices, and an unassigned draft at 25 %."""
    program = api.program()
    acme, beta = api.partner(program["id"], "Acme Media"), api.partner(program["id"], "Beta Blog")
    invoice(session_factory, api, program["id"], acme["id"], 1, 12_345)
    invoice(session_factory, api, program["id"], beta["id"], 2, 40_000)
    plan = api.post(
        f"/programs/{program['id']}/plans",
        {"name": "Richer", "rules": [{"trigger": "invoice_paid", "percent_bp": 2500}]},
    ).json()
    return {"program": program, "acme": acme, "beta": beta, "plan": plan}


def counts(factory: sessionmaker[Session]) -> tuple[int, int]:
    with factory() as s:
        return (
            int(s.scalar(select(func.count()).select_from(CommissionLine)) or 0),
            int(s.scalar(select(func.count()).select_from(AuditEntry)) or 0),
        )


class TestSimulateApi:
    def test_the_draft_against_what_was_paid_per_partner_and_in_total(
        self, api: Api, setup: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        before = counts(session_factory)
        response = api.post(f"/plans/{setup['plan']['id']}/simulate", WINDOW)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["version"], body["version_status"], body["from"], body["to"]) == (1, "draft", *WINDOW.values())
        assert body["events"] == {"replayed": 2, "simulated": 2, "paying_before": 0}
        by_name = {p["name"]: p["currencies"]["EUR"] for p in body["partners"]}
        # 20 % of €123.45 = €24.69 was paid; 25 % = €30.86 (half-even); Beta 80.00 → 100.00.
        assert by_name["Acme Media"]["was"]["commission"] == 2469
        assert by_name["Acme Media"]["would"] == {
            "commission": 3086, "true_up": 0, "bonus": 0, "two_tier": 0, "clawback": 0, "reinstatement": 0,
            "net": 3086,
        }  # fmt: skip
        assert by_name["Acme Media"]["difference"] == 617
        assert by_name["Beta Blog"]["difference"] == 2000
        assert body["totals"]["EUR"]["difference"] == 2617
        assert any("fraud holds" in note for note in body["not_simulated"])
        assert counts(session_factory) == before

    def test_bad_dates_and_a_missing_version_are_refused_at_their_field(self, api: Api, setup: dict[str, Any]) -> None:
        path = f"/plans/{setup['plan']['id']}/simulate"
        backwards = api.post(path, {"from": "2026-02-01", "to": "2026-01-01"})
        assert backwards.status_code == 422 and backwards.json()["error"]["field"] == "to"
        assert api.post(path, {"from": "2026-13-01", "to": "2026-01-01"}).status_code == 422
        missing = api.post(path, {**WINDOW, "version": 9})
        assert missing.status_code == 404 and missing.json()["error"]["field"] == "version"
        assert api.post("/plans/pln_nope/simulate", WINDOW).status_code == 404

    def test_another_programs_key_and_a_partner_get_404_a_read_key_may_simulate(
        self, api: Api, setup: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        path = f"/plans/{setup['plan']['id']}/simulate"
        other = api.program(name="Other")
        assert api.post(path, WINDOW, key=api.key_for(session_factory, program_id=other["id"])).status_code == 404
        client, csrf = portal(api, session_factory, setup["acme"]["id"], "jo@acme.example")
        assert client.post(f"/api/v1{path}", json=WINDOW, headers={"X-CSRF-Token": csrf}).status_code == 404
        assert api.post(path, WINDOW, key=api.key_for(session_factory, scopes=["read"])).status_code == 200
        assert api.post(path, WINDOW, key=api.key_for(session_factory, scopes=["write"])).status_code == 403

    def test_the_openapi_document_lists_the_route(self, api: Api) -> None:
        assert "/api/v1/plans/{plan_id}/simulate" in api.client.get("/api/v1/openapi.json").json()["paths"]


class TestSimulatePage:
    def test_the_plan_page_offers_it_and_the_page_shows_the_table_with_totals(self, world: World) -> None:
        with world.factory() as s:
            plan, _ = create_plan(
                s, actor=SYSTEM, program_id=world.program_id, name="Richer",
                rules=[{"trigger": "invoice_paid", "percent_bp": 3000}], now=world.clock.now(),
            )  # fmt: skip
            s.commit()
            plan_id = plan.id
        client = staff(world, "viewer")
        assert f'action="/plans/{plan_id}/simulate"' in client.get(f"/plans/{plan_id}").text
        page = client.get(f"/plans/{plan_id}/simulate", params={"from": "2026-01-01", "to": "2026-01-31"})
        assert page.status_code == 200
        assert "2 event(s) replayed, 2 under this version" in page.text
        # Acme: 20 % of €1,200.00 was €240.00; 30 % would be €360.00.
        row = page.text.split(f'id="partner-{world.acme_id}-EUR"')[1].split("</tr>")[0]
        assert "€360.00" in row and "€240.00" in row and "€120.00" in row
        total = page.text.split('id="total-EUR"')[1].split("</tr>")[0]
        assert "€510.02" in total and "€340.01" in total and "€170.01" in total

    def test_a_backwards_window_is_shown_next_to_the_field(self, world: World) -> None:
        with world.factory() as s:
            plan, _ = create_plan(
                s, actor=SYSTEM, program_id=world.program_id, name="Richer",
                rules=[{"trigger": "invoice_paid", "percent_bp": 3000}], now=world.clock.now(),
            )  # fmt: skip
            s.commit()
            plan_id = plan.id
        backwards = {"from": "2026-02-01", "to": "2026-01-01"}
        page = staff(world, "viewer").get(f"/plans/{plan_id}/simulate", params=backwards)
        assert page.status_code == 422 and 'id="f-to-error"' in page.text and "is before from" in page.text
