"""Leads and deals over HTTP: registration errors at the field, conflicts, decisions, stage moves, update requests."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.partners.service import add_partner_user
from tests.api.conftest import Api
from tests.api.test_pages import CSRF, PASSWORD


@pytest.fixture
def setup(api: Api) -> dict[str, Any]:
    program = api.program()
    acme = api.partner(program["id"], "Acme Media")
    beta = api.partner(program["id"], "Beta Blog")
    return {"program": program["id"], "acme": acme["id"], "beta": beta["id"]}


def register(api: Api, setup: dict[str, Any], partner: str = "acme", **body: Any) -> Any:
    data = {"program_id": setup["program"], "partner_id": setup[partner], "company": "Globex Inc.",
            "domain": "https://www.globex.com/", **body}  # fmt: skip
    return api.post("/leads", data)


def portal(api: Api, session_factory: sessionmaker[Session], partner_id: str, email: str) -> tuple[TestClient, str]:
    """A client logged in to the portal as the partner, and its CSRF token for API writes."""
    with session_factory() as s:
        add_partner_user(s, actor=SYSTEM, partner_id=partner_id, email=email, password=PASSWORD, now=api.clock.now())
        s.commit()
    client = TestClient(api.client.app)
    match = CSRF.search(client.get("/portal/login").text)
    assert match
    token = match.group(1)
    response = client.post("/portal/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 200
    match = CSRF.search(client.get("/portal").text)
    assert match
    return client, match.group(1)


class TestRegister:
    def test_a_lead_is_created_with_its_normalised_domain(self, api: Api, setup: dict[str, Any]) -> None:
        response = register(api, setup, expected_value=500_000, contact_email="jane@globex.com")
        assert response.status_code == 201, response.text
        lead = response.json()
        assert (lead["domain"], lead["company_key"], lead["status"], lead["currency"]) == (
            "globex.com", "globex", "registered", "EUR")  # fmt: skip
        assert api.get(f"/leads/{lead['id']}").json()["id"] == lead["id"]

    @pytest.mark.parametrize(
        ("body", "field"),
        [({"domain": "not a host"}, "domain"), ({"contact_email": "nope"}, "contact_email"),
         ({"expected_value": 12.5}, "expected_value"), ({"company": ""}, "company"),
         ({"currency": "XXQ", "expected_value": 1}, "currency")],
    )  # fmt: skip
    def test_bad_input_is_a_422_naming_the_field(
        self, api: Api, setup: dict[str, Any], body: dict[str, Any], field: str
    ) -> None:
        response = register(api, setup, **body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field

    def test_a_conflict_is_flagged_not_refused(self, api: Api, setup: dict[str, Any]) -> None:
        first = register(api, setup).json()
        second = register(api, setup, partner="beta", company="Globex GmbH", domain="sales@globex.com")
        assert second.status_code == 201
        (found,) = second.json()["conflicts"]
        assert (found["kind"], found["ref_id"]) == ("other_partner_lead", first["id"])
        assert [x["id"] for x in api.get("/leads", conflicted="true").json()["data"]] == [second.json()["id"]]

    def test_the_same_idempotency_key_registers_once(self, api: Api, setup: dict[str, Any]) -> None:
        body = {"program_id": setup["program"], "partner_id": setup["acme"], "company": "Initech"}
        first = api.post("/leads", body, **{"Idempotency-Key": "lead-1"})
        again = api.post("/leads", body, **{"Idempotency-Key": "lead-1"})
        assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
        assert len(api.get("/leads").json()["data"]) == 1


class TestDecideAndMove:
    def test_accept_then_move_then_win_records_the_event(self, api: Api, setup: dict[str, Any]) -> None:
        lead = register(api, setup).json()
        accepted = api.post(f"/leads/{lead['id']}/accept")
        assert accepted.status_code == 200, accepted.text
        deal = accepted.json()["deal"]
        assert (accepted.json()["status"], deal["stage"]) == ("accepted", "registered")
        assert api.post(f"/deals/{deal['id']}/stage", {"stage": "demo"}).json()["stage"] == "demo"
        won = api.post(f"/deals/{deal['id']}/stage", {"status": "won", "amount": 990_000})
        assert won.status_code == 200, won.text
        assert won.json()["status"] == "won" and won.json()["event_id"].startswith("evt_")
        again = api.post(f"/deals/{deal['id']}/stage", {"stage": "demo"})
        assert again.status_code == 409
        timeline = api.get(f"/deals/{deal['id']}/timeline").json()["data"]
        assert [line["kind"] for line in timeline] == ["lead.registered", "lead.accepted", "deal.stage", "deal.won"]
        assert api.get("/deals", status="won").json()["data"][0]["id"] == deal["id"]

    def test_bulk_reject_needs_a_reason_and_decides_all(self, api: Api, setup: dict[str, Any]) -> None:
        ids = [register(api, setup).json()["id"], register(api, setup, company="Initech").json()["id"]]
        assert api.post("/leads/reject", {"ids": ids}).status_code == 422
        done = api.post("/leads/reject", {"ids": ids, "reason": "not a fit"})
        assert [x["status"] for x in done.json()["data"]] == ["rejected", "rejected"]
        assert api.post("/leads/accept", {"ids": ids}).status_code == 409

    def test_a_float_amount_is_refused(self, api: Api, setup: dict[str, Any]) -> None:
        lead = register(api, setup).json()
        deal = api.post(f"/leads/{lead['id']}/accept").json()["deal"]
        response = api.post(f"/deals/{deal['id']}/stage", {"status": "won", "amount": 10.5})
        assert response.status_code == 422 and response.json()["error"]["field"] == "amount"


class TestPartnerScope:
    def test_a_partner_registers_for_itself_and_never_sees_another_partners_lead(
        self, api: Api, setup: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        theirs = register(api, setup, partner="beta").json()
        client, token = portal(api, session_factory, setup["acme"], "jo@acme.example")
        mine = client.post("/api/v1/leads", json={"program_id": setup["program"], "company": "Initech"},
                           headers={"X-CSRF-Token": token})  # fmt: skip
        assert mine.status_code == 201, mine.text
        assert mine.json()["partner_id"] == setup["acme"]
        assert client.get(f"/api/v1/leads/{theirs['id']}").status_code == 404
        assert [x["id"] for x in client.get("/api/v1/leads").json()["data"]] == [mine.json()["id"]]
        assert (
            client.post(f"/api/v1/leads/{mine.json()['id']}/accept", headers={"X-CSRF-Token": token}).status_code == 403
        )
        no_csrf = client.post("/api/v1/leads", json={"program_id": setup["program"], "company": "X"})
        assert no_csrf.status_code == 403

    def test_staff_ask_and_the_partner_answers_through_the_api(
        self, api: Api, setup: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        lead = register(api, setup).json()
        asked = api.post(f"/leads/{lead['id']}/update-requests", {"message": "Did the demo happen?"})
        assert asked.status_code == 201, asked.text
        other, other_token = portal(api, session_factory, setup["beta"], "jo@beta.example")
        path = f"/api/v1/update-requests/{asked.json()['id']}/answer"
        assert other.post(path, json={"answer": "x"}, headers={"X-CSRF-Token": other_token}).status_code == 404
        client, token = portal(api, session_factory, setup["acme"], "jo@acme.example")
        answered = client.post(path, json={"answer": "Yes, proposal next"}, headers={"X-CSRF-Token": token})
        assert answered.status_code == 200, answered.text
        timeline = api.get(f"/leads/{lead['id']}/timeline").json()
        assert timeline["data"][-1]["text"] == "Partner's update: Yes, proposal next"
        assert timeline["update_requests"][0]["answered_at"] is not None
        assert api.post(path.removeprefix("/api/v1"), {"answer": "staff"}).status_code == 403
