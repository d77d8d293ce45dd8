"""Approval policies over HTTP: the policy resource, 403 with the reason, second approvals of lines and batches by
staff sessions, bulk decisions by filter (all or none), and the overdue filter."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from partnerpay.commissions.models import CommissionLine
from partnerpay.ledger.verify import verify
from tests.api.conftest import Api
from tests.api.test_pages import PASSWORD, csrf_of, login
from tests.conftest import T0


class Staff:
    """A logged-in staff browser calling the API with its session cookie and CSRF header."""

    def __init__(self, api: Api, email: str) -> None:
        self.client = login(TestClient(api.client.app), email)
        self.token = csrf_of(self.client, "/commissions")

    def post(self, path: str, json: Any = None) -> Any:
        return self.client.post(f"/api/v1{path}", json=json, headers={"X-CSRF-Token": self.token})


@pytest.fixture
def people(api: Api, session_factory: sessionmaker[Session]) -> dict[str, Staff]:
    with session_factory() as s:
        for name, role in (("fin1", "finance"), ("fin2", "finance"), ("boss", "owner"), ("man", "manager")):
            create_staff_user(s, actor=SYSTEM, email=f"{name}@example.com", role=role, password=PASSWORD, now=T0)
        s.commit()
    return {name: Staff(api, f"{name}@example.com") for name in ("fin1", "fin2", "boss", "man")}


def sale(api: Api, program: dict[str, Any], partner: dict[str, Any], external_id: str, amount: int) -> str:
    """A paid invoice; the program pays 20 %, so the line is amount / 5."""
    body = {
        "program_id": program["id"],
        "type": "invoice_paid",
        "external_id": external_id,
        "occurred_at": api.clock.now().isoformat(),
        "customer_external_id": f"cus_{external_id}",
        "partner_id": partner["id"],
        "amount": amount,
        "currency": "EUR",
    }
    response = api.post("/events", body)
    assert response.status_code == 201, response.text
    return str(response.json()["commissions"][0]["id"])


def statuses(factory: sessionmaker[Session]) -> dict[str, str]:
    with factory() as s:
        return {i: st for i, st in s.execute(select(CommissionLine.id, CommissionLine.status))}


def admin_key(api: Api, factory: sessionmaker[Session]) -> str:
    return api.key_for(factory, scopes=["read", "write", "approve", "payouts", "admin"], name="admin")


class TestPolicyResource:
    def test_defaults_then_a_put_reads_back(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program = api.program()
        got = api.get(f"/programs/{program['id']}/approval-policy").json()
        assert got["approver_roles"] == ["finance", "owner"] and got["is_default"] is True
        assert got["second_approval_above"] is None and got["sla_days"] is None
        body = {"approver_roles": ["manager", "finance"], "second_approval_above": 50_000, "sla_days": 3}
        refused = api.client.put(f"/api/v1/programs/{program['id']}/approval-policy", json=body, headers=api.headers())
        assert refused.status_code == 403 and "owner role" in refused.json()["error"]["message"]
        key = admin_key(api, session_factory)
        saved = api.client.put(f"/api/v1/programs/{program['id']}/approval-policy", json=body, headers=api.headers(key))
        assert saved.status_code == 200, saved.text
        again = api.get(f"/programs/{program['id']}/approval-policy").json()
        assert again == saved.json() and again["is_default"] is False and again["sla_days"] == 3

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"second_approval_above": 500.0}, "second_approval_above"),
            ({"second_approval_above": "500"}, "second_approval_above"),
            ({"auto_approve_below": -1}, "auto_approve_below"),
            ({"sla_days": 0}, "sla_days"),
            ({"approver_roles": ["viewer"]}, "approver_roles"),
            ({"approver_roles": []}, "approver_roles"),
            ({"auto_approve_below": 10_000, "second_approval_above": 100}, "auto_approve_below"),
            ({"limit": 5}, "limit"),
        ],
    )
    def test_bad_input_is_422_naming_the_field(
        self, api: Api, session_factory: sessionmaker[Session], body: dict[str, Any], field: str
    ) -> None:
        program = api.program()
        key = admin_key(api, session_factory)
        response = api.client.put(
            f"/api/v1/programs/{program['id']}/approval-policy", json=body, headers=api.headers(key)
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field
        assert api.get(f"/programs/{program['id']}/approval-policy").json()["is_default"] is True

    def test_another_programs_policy_is_404(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program, other = api.program(), api.program(name="Other")
        scoped = api.key_for(session_factory, program_id=other["id"], scopes=["read", "admin"], name="other")
        assert api.get(f"/programs/{program['id']}/approval-policy", key=scoped).status_code == 404


class TestLineApprovals:
    def test_a_role_the_policy_does_not_allow_is_403_with_the_reason(
        self, api: Api, people: dict[str, Staff], session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        line = sale(api, program, api.partner(program["id"]), "inv1", 10_000)
        refused = people["man"].post("/commissions/approve", {"ids": [line]})
        assert refused.status_code == 403
        error = refused.json()["error"]
        assert "needs the finance or owner role" in error["message"] and "manager" in error["message"]
        assert statuses(session_factory)[line] == "pending"

    def test_above_the_threshold_the_second_approval_comes_from_someone_else(
        self, api: Api, people: dict[str, Staff], session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        api.client.put(
            f"/api/v1/programs/{program['id']}/approval-policy",
            json={"second_approval_above": 50_000},
            headers=api.headers(admin_key(api, session_factory)),
        )
        partner = api.partner(program["id"])
        big, small = sale(api, program, partner, "inv1", 500_000), sale(api, program, partner, "inv2", 5_000)
        first = people["fin1"].post("/commissions/approve", {"ids": [big, small], "reason": "checked contract"})
        assert first.status_code == 200, first.text
        results = {r["id"]: r for r in first.json()["results"]}
        assert results[small] == {"id": small, "status": "approved"}
        assert results[big]["status"] == "pending" and results[big]["awaiting"] == "second_approval"
        listed = {x["id"]: x for x in api.get("/commissions", program_id=program["id"]).json()["data"]}
        assert listed[big]["awaiting_second_approval"] is True and listed[big]["first_approved_by"] is not None
        again = people["fin1"].post("/commissions/approve", {"ids": [big]})
        assert again.status_code == 403 and "second approval must come from a different" in again.text
        by_key = api.post("/commissions/approve", {"ids": [big]})
        assert by_key.status_code == 403 and "finance or owner role" in by_key.json()["error"]["message"]
        done = people["fin2"].post("/commissions/approve", {"ids": [big]})
        assert done.status_code == 200 and done.json()["results"] == [{"id": big, "status": "approved"}]
        with session_factory() as s:
            assert verify(s).ok


class TestBulkByFilter:
    def test_approve_all_matching_with_per_id_results(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program, other = api.program(), api.program(name="Other")
        acme, beta = api.partner(program["id"]), api.partner(program["id"], "Beta Blog")
        small = [sale(api, program, acme, f"a{n}", 10_000) for n in range(3)]
        large = sale(api, program, beta, "b1", 1_000_000)
        elsewhere = sale(api, other, api.partner(other["id"], "Gamma"), "g1", 10_000)
        response = api.post("/commissions/approve", {"filter": {"program_id": program["id"], "max_amount": 2_000}})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["matched"] == 3 and sorted(r["id"] for r in body["results"]) == sorted(small)
        now = statuses(session_factory)
        assert {now[i] for i in small} == {"approved"} and now[large] == "pending" and now[elsewhere] == "pending"
        nothing = api.post("/commissions/approve", {"filter": {"program_id": program["id"], "max_amount": 2_000}})
        assert nothing.json() == {"results": [], "matched": 0}

    def test_one_line_that_cannot_be_approved_fails_the_whole_filter(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        acme = api.partner(program["id"])
        lines = [sale(api, program, acme, f"a{n}", 10_000) for n in range(2)]
        adjustment = {"partner_id": acme["id"], "amount": 500, "currency": "EUR", "reason": "goodwill"}
        own = api.post("/commissions/adjustments", adjustment).json()["id"]
        before = statuses(session_factory)
        response = api.post("/commissions/approve", {"filter": {"program_id": program["id"]}})
        assert response.status_code == 403 and own in response.json()["error"]["message"]
        assert statuses(session_factory) == before and {before[i] for i in [*lines, own]} == {"pending"}

    def test_reject_all_matching_needs_a_reason_and_takes_approved_lines_too(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        acme, beta = api.partner(program["id"]), api.partner(program["id"], "Beta Blog")
        a1, a2, b1 = (sale(api, program, p, n, 10_000) for p, n in ((acme, "a1"), (acme, "a2"), (beta, "b1")))
        api.post("/commissions/approve", {"ids": [a2]})
        flt = {"program_id": program["id"], "partner_id": acme["id"]}
        missing = api.post("/commissions/reject", {"filter": flt})
        assert missing.status_code == 422 and missing.json()["error"]["field"] == "reason"
        pending = api.post("/commissions/reject", {"filter": flt, "reason": "fraudulent traffic"})
        assert pending.status_code == 200 and [r["id"] for r in pending.json()["results"]] == [a1]
        approved = api.post("/commissions/reject", {"filter": {**flt, "status": "approved"}, "reason": "fraud"})
        assert [r["id"] for r in approved.json()["results"]] == [a2]
        now = statuses(session_factory)
        assert (now[a1], now[a2], now[b1]) == ("rejected", "rejected", "pending")
        with session_factory() as s:
            assert verify(s).ok

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"filter": {"max_amount": 10}}, "filter.program_id"),
            ({"filter": {"program_id": "P", "max_amount": 1.5}}, "filter.max_amount"),
            ({"filter": {"program_id": "P", "status": "paid"}}, "filter.status"),
            ({"filter": {"program_id": "P", "colour": "red"}}, "filter.colour"),
            ({"filter": {"program_id": "P"}, "ids": ["com_x"]}, None),
            ({}, None),
        ],
    )
    def test_a_bad_filter_is_422(self, api: Api, body: dict[str, Any], field: str | None) -> None:
        program = api.program()
        if "filter" in body and body["filter"].get("program_id") == "P":
            body = {**body, "filter": {**body["filter"], "program_id": program["id"]}}
        response = api.post("/commissions/approve", body)
        assert response.status_code == 422, response.text
        if field is not None:
            assert response.json()["error"]["field"] == field


class TestOverdue:
    def test_overdue_lines_are_listed_and_marked(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program = api.program()
        api.client.put(
            f"/api/v1/programs/{program['id']}/approval-policy",
            json={"sla_days": 2},
            headers=api.headers(admin_key(api, session_factory)),
        )
        acme = api.partner(program["id"])
        old = sale(api, program, acme, "a1", 10_000)
        api.clock.advance(timedelta(days=2))
        fresh = sale(api, program, acme, "a2", 10_000)
        api.clock.advance(timedelta(hours=1))
        overdue = api.get("/commissions", program_id=program["id"], overdue="true").json()["data"]
        assert [x["id"] for x in overdue] == [old]
        assert overdue[0]["overdue"] is True and overdue[0]["pending_since"].startswith(T0.date().isoformat())
        on_time = api.get("/commissions", program_id=program["id"], overdue="false").json()["data"]
        assert [x["id"] for x in on_time] == [fresh] and on_time[0]["overdue"] is False
        matched = api.post("/commissions/approve", {"filter": {"program_id": program["id"], "overdue": True}})
        assert [r["id"] for r in matched.json()["results"]] == [old]
        assert api.get("/commissions", program_id=program["id"], overdue="true").json()["data"] == []


class TestBatchApproval:
    def test_a_batch_above_the_limit_needs_two_different_finance_users(
        self, api: Api, people: dict[str, Staff], session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program(hold_days=0)
        api.client.put(
            f"/api/v1/programs/{program['id']}/approval-policy",
            json={"batch_second_approval_above": 10_000},
            headers=api.headers(admin_key(api, session_factory)),
        )
        line = sale(api, program, api.partner(program["id"]), "inv1", 100_000)
        assert api.post("/commissions/approve", {"ids": [line]}).status_code == 200
        api.clock.advance(timedelta(seconds=1))
        run = people["fin1"].post("/payout-runs", {"program_id": program["id"]})
        assert run.status_code == 201, run.text
        batch_id = run.json()["batch_id"]
        first = people["fin2"].post(f"/payout-batches/{batch_id}/approve")
        assert first.status_code == 200, first.text
        assert (first.json()["status"], first.json()["awaiting_second_approval"]) == ("draft", True)
        same = people["fin2"].post(f"/payout-batches/{batch_id}/approve")
        assert same.status_code == 403 and "first approval" in same.json()["error"]["message"]
        maker = people["fin1"].post(f"/payout-batches/{batch_id}/approve")
        assert maker.status_code == 403 and "you created the payout run" in maker.json()["error"]["message"]
        final = people["boss"].post(f"/payout-batches/{batch_id}/approve")
        assert final.status_code == 200, final.text
        body = final.json()
        assert body["status"] == "approved" and body["awaiting_second_approval"] is False
        assert body["second_approved_by"] is not None and {p["status"] for p in body["payouts"]} == {"approved"}
