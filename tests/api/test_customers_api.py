"""Customers over HTTP: lists and filters, one customer's timeline, partner and program isolation, and
attributing a customer to a partner by hand (commission, ledger, audit, refusals at the field)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditEntry
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import Customer, Event
from partnerpay.ledger.models import LedgerTransaction
from partnerpay.tracking.attribution_models import Attribution
from tests.api.conftest import Api
from tests.api.test_deals_api import portal


@pytest.fixture
def setup(api: Api) -> dict[str, Any]:
    program = api.program(hold_days=0)
    acme = api.partner(program["id"], "Acme Media")
    beta = api.partner(program["id"], "Beta Blog")
    return {"program": program["id"], "acme": acme["id"], "beta": beta["id"]}


def send(api: Api, setup: dict[str, Any], external_id: str, customer: str, **body: Any) -> dict[str, Any]:
    data = {
        "program_id": setup["program"],
        "type": "invoice_paid",
        "external_id": external_id,
        "occurred_at": (api.clock.now() - timedelta(days=1)).isoformat(),
        "customer_external_id": customer,
        "amount": 10_000,
        "currency": "EUR",
        **body,
    }
    response = api.post("/events", data)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def customer_id(api: Api, setup: dict[str, Any], external_id: str) -> str:
    [found] = [c for c in api.get("/customers", program_id=setup["program"]).json()["data"]
               if c["external_id"] == external_id]  # fmt: skip
    return str(found["id"])


@pytest.fixture
def three(api: Api, setup: dict[str, Any]) -> dict[str, str]:
    """cus_acme (Acme's), cus_beta (Beta's) and cus_lost (no partner, two payments and a partial refund)."""
    send(api, setup, "in_a1", "cus_acme", partner_id=setup["acme"], customer_email="ann@acme-client.example")
    send(api, setup, "in_b1", "cus_beta", partner_id=setup["beta"])
    send(api, setup, "in_l1", "cus_lost", customer_email="lost@nowhere.example",
         occurred_at=(api.clock.now() - timedelta(days=3)).isoformat())  # fmt: skip
    send(api, setup, "in_l2", "cus_lost", amount=5_000)
    send(api, setup, "re_l1", "cus_lost", type="refund", amount=2_000, original_external_id="in_l1")
    return {name: customer_id(api, setup, f"cus_{name}") for name in ("acme", "beta", "lost")}


class TestList:
    def test_filters_by_partner_none_search_and_status(
        self, api: Api, setup: dict[str, Any], three: dict[str, str]
    ) -> None:
        listed = api.get("/customers", program_id=setup["program"]).json()["data"]
        assert sorted(c["external_id"] for c in listed) == ["cus_acme", "cus_beta", "cus_lost"]
        acme = api.get("/customers", program_id=setup["program"], partner_id=setup["acme"]).json()["data"]
        assert [(c["external_id"], c["partner_name"], c["currency"]) for c in acme] == [
            ("cus_acme", "Acme Media", "EUR")]  # fmt: skip
        none = api.get("/customers", program_id=setup["program"], partner_id="none").json()["data"]
        assert [c["external_id"] for c in none] == ["cus_lost"] and none[0]["partner_id"] is None
        assert [c["external_id"] for c in api.get("/customers", q="NOWHERE").json()["data"]] == ["cus_lost"]
        assert [c["external_id"] for c in api.get("/customers", q="cus_be").json()["data"]] == ["cus_beta"]
        status = listed[0]["status"]
        same = api.get("/customers", program_id=setup["program"], status=status).json()["data"]
        assert same and {c["status"] for c in same} == {status}

    def test_a_bad_status_is_refused_naming_the_field(self, api: Api, setup: dict[str, Any]) -> None:
        response = api.get("/customers", status="happy")
        assert response.status_code == 422 and response.json()["error"]["field"] == "status"

    def test_pages_follow_the_cursor(self, api: Api, setup: dict[str, Any], three: dict[str, str]) -> None:
        first = api.get("/customers", program_id=setup["program"], limit=2).json()
        assert len(first["data"]) == 2 and first["next_cursor"]
        rest = api.get("/customers", program_id=setup["program"], limit=2, cursor=first["next_cursor"]).json()
        assert len(rest["data"]) == 1 and rest["next_cursor"] is None
        ids = [c["id"] for c in first["data"] + rest["data"]]
        assert sorted(ids) == sorted(three.values())


class TestOne:
    def test_the_timeline_is_newest_first_with_each_events_commission_lines(
        self, api: Api, setup: dict[str, Any], three: dict[str, str]
    ) -> None:
        send(api, setup, "in_a2", "cus_acme", amount=20_000, occurred_at=api.clock.now().isoformat())
        body = api.get(f"/customers/{three['acme']}").json()
        assert body["customer"]["partner_id"] == setup["acme"]
        assert [t["event"]["external_id"] for t in body["timeline"]] == ["in_a2", "in_a1"]
        assert [[c["amount"] for c in t["commissions"]] for t in body["timeline"]] == [[4_000], [2_000]]
        assert body["timeline"][0]["partner_name"] == "Acme Media"
        assert body["attribution"]["rule"] == "partner_id" and body["timeline"][1]["attribution_reason"]
        assert body["totals"]["paid"] == [{"currency": "EUR", "amount": 30_000}]
        assert body["totals"]["commissions"] == [{"currency": "EUR", "amount": 6_000}]

    def test_an_unattributed_event_says_why(self, api: Api, three: dict[str, str]) -> None:
        body = api.get(f"/customers/{three['lost']}").json()
        assert body["attribution"] is None
        paid = [t for t in body["timeline"] if t["event"]["type"] == "invoice_paid"]
        assert all(t["event"]["unattributed_reason"] for t in paid) and all(not t["commissions"] for t in paid)
        assert body["totals"]["reversed"] == [{"currency": "EUR", "amount": 2_000}]

    def test_another_programs_key_gets_404(
        self, api: Api, session_factory: sessionmaker[Session], setup: dict[str, Any], three: dict[str, str]
    ) -> None:
        other = api.program(name="Other")
        key = api.key_for(session_factory, program_id=other["id"])
        assert api.get(f"/customers/{three['acme']}", key=key).status_code == 404
        assert api.get("/customers", key=key).json()["data"] == []
        refused = api.get("/customers", key=key, program_id=setup["program"])
        assert refused.status_code == 404 and refused.json()["error"]["field"] == "program_id"
        assert api.get("/customers/cus_nope").status_code == 404

    def test_a_partner_sees_only_its_own_customers_without_contact_details(
        self, api: Api, session_factory: sessionmaker[Session], setup: dict[str, Any], three: dict[str, str]
    ) -> None:
        client, _ = portal(api, session_factory, setup["acme"], "jo@acme.example")
        listed = client.get("/api/v1/customers").json()["data"]
        assert [c["id"] for c in listed] == [three["acme"]] and listed[0]["email"] is None
        assert client.get(f"/api/v1/customers/{three['beta']}").status_code == 404
        assert client.get(f"/api/v1/customers/{three['lost']}").status_code == 404
        assert client.get(f"/api/v1/customers/{three['acme']}").json()["customer"]["external_id"] == "cus_acme"
        assert client.get(f"/api/v1/programs/{setup['program']}/data-quality").status_code == 403


def count(factory: sessionmaker[Session], model: Any, *where: Any) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(model).where(*where)) or 0)


class TestAttribute:
    def test_the_unattributed_payments_earn_the_refund_is_clawed_back_and_it_is_audited(
        self, api: Api, session_factory: sessionmaker[Session], setup: dict[str, Any], three: dict[str, str]
    ) -> None:
        ledger_before = count(session_factory, LedgerTransaction)
        why = "Beta's email of 3 Nov introduced them"
        response = api.post(f"/customers/{three['lost']}/attribute", {"partner_id": setup["beta"], "reason": why})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["customer"]["partner_id"] == setup["beta"] and body["attribution"]["rule"] == "manual"
        assert "Beta's email of 3 Nov" in body["attribution"]["reason"]
        # 20 % of 100.00 and of 50.00, and 20 % of the 20.00 already refunded taken back.
        assert sorted(c["amount"] for c in body["commissions_created"]) == [-400, 1_000, 2_000]
        assert all(c["partner_id"] == setup["beta"] for c in body["commissions_created"])
        assert "Beta's email of 3 Nov" in body["commissions_created"][0]["explanation"]
        assert len(body["attributed_events"]) == 2
        with session_factory() as s:
            events = s.scalars(select(Event).where(Event.id.in_(body["attributed_events"]))).all()
            assert {(e.partner_id, e.attribution_id) for e in events} == {(setup["beta"], body["attribution"]["id"])}
            [audit] = s.scalars(select(AuditEntry).where(AuditEntry.action == "customer.attribute")).all()
            assert audit.object_id == three["lost"]
            assert audit.before is not None and audit.before["partner_id"] is None
            assert audit.after is not None and audit.after["partner_id"] == setup["beta"]
            assert audit.after["reason"] == "Beta's email of 3 Nov introduced them"
            assert sorted(audit.after["event_ids"]) == sorted(body["attributed_events"])
        assert count(session_factory, LedgerTransaction) == ledger_before + 3
        # The customer is Beta's now: its next payment earns without anyone's help.
        later = send(api, setup, "in_l3", "cus_lost", amount=1_000, occurred_at=api.clock.now().isoformat())
        assert [c["amount"] for c in later["commissions"]] == [200] and later["event"]["partner_id"] == setup["beta"]
        assert api.get("/customers", partner_id="none").json()["data"] == []

    @pytest.mark.parametrize(
        ("who", "body", "status", "field"),
        [
            ("acme", {"partner_id": "beta", "reason": "x"}, 409, "customer_id"),
            ("lost", {"partner_id": "other", "reason": "x"}, 404, "partner_id"),
            ("lost", {"partner_id": "par_nope", "reason": "x"}, 404, "partner_id"),
            ("lost", {"partner_id": "suspended", "reason": "x"}, 422, "partner_id"),
            ("lost", {"partner_id": "beta", "reason": "   "}, 422, "reason"),
            ("lost", {"partner_id": "beta"}, 422, "reason"),
        ],
    )
    def test_refusals_name_the_field_and_write_nothing(
        self,
        api: Api,
        session_factory: sessionmaker[Session],
        setup: dict[str, Any],
        three: dict[str, str],
        who: str,
        body: dict[str, Any],
        status: int,
        field: str,
    ) -> None:
        ids = {"beta": setup["beta"], "other": api.partner(api.program(name="Other")["id"], "Elsewhere")["id"]}
        ids["suspended"] = api.partner(setup["program"], "Gone Ltd")["id"]
        assert api.post(f"/partners/{ids['suspended']}/suspend", {"reason": "fraud review"}).status_code == 200
        body = {**body, "partner_id": ids.get(body["partner_id"], body["partner_id"])} if "partner_id" in body else body
        lines = count(session_factory, CommissionLine)
        response = api.post(f"/customers/{three[who]}/attribute", body)
        assert response.status_code == status, response.text
        error = response.json()["error"]
        assert error.get("field") == field or field in str(error), error
        assert count(session_factory, CommissionLine) == lines
        assert count(session_factory, Attribution, Attribution.rule == "manual") == 0
        assert count(session_factory, AuditEntry, AuditEntry.action == "customer.attribute") == 0
        with session_factory() as s:
            lost = s.get(Customer, three["lost"])
            assert lost is not None and lost.partner_id is None

    def test_a_read_only_key_or_a_partner_cannot_attribute(
        self, api: Api, session_factory: sessionmaker[Session], setup: dict[str, Any], three: dict[str, str]
    ) -> None:
        key = api.key_for(session_factory, scopes=["read"])
        path = f"/customers/{three['lost']}/attribute"
        assert api.post(path, {"partner_id": setup["beta"], "reason": "x"}, key=key).status_code == 403
        client, token = portal(api, session_factory, setup["acme"], "jo@acme.example")
        mine = client.post(f"/api/v1{path}", json={"partner_id": setup["acme"], "reason": "mine!"},
                           headers={"X-CSRF-Token": token})  # fmt: skip
        assert mine.status_code == 403
        assert count(session_factory, AuditEntry, AuditEntry.action == "customer.attribute") == 0

    def test_after_the_attribution_expired_another_partner_may_be_given_and_the_first_keeps_its_commission(
        self, api: Api, session_factory: sessionmaker[Session], setup: dict[str, Any]
    ) -> None:
        assert api.client.patch(f"/api/v1/programs/{setup['program']}", json={"attribution_months": 1},
                                headers=api.headers()).status_code == 200  # fmt: skip
        old = (api.clock.now() - timedelta(days=70)).isoformat()
        first = send(api, setup, "in_x1", "cus_x", partner_id=setup["acme"], occurred_at=old)
        assert [c["amount"] for c in first["commissions"]] == [2_000]
        cid = customer_id(api, setup, "cus_x")
        response = api.post(f"/customers/{cid}/attribute", {"partner_id": setup["beta"], "reason": "moved to Beta"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["attributed_events"] == [] and body["commissions_created"] == []
        assert [a["rule"] for a in body["history"]] == ["partner_id", "manual"]
        assert body["timeline"][0]["event"]["partner_id"] == setup["acme"]  # history is not rewritten
        assert body["attribution"]["expires_at"] is not None
