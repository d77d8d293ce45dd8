"""POST /partners/{id}/payout-method/verify: maker-checker verification that the verified-method gate of a
payout run relies on."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditEntry
from partnerpay.auth.actor import SYSTEM
from partnerpay.kit.crypto import SecretBox
from partnerpay.partners.models import Partner, PayoutMethod
from partnerpay.partners.payout_details import set_payout_method
from tests.api import test_pages
from tests.api.conftest import Api
from tests.api.test_pages import World, csrf_of, staff

world = test_pages.world  # the console World fixture: a program, Acme and Beta, staff logins by role

SEPA = {"type": "sepa", "iban": "DE89 3704 0044 0532 0130 00", "account_holder": "Acme Media GmbH"}


@pytest.fixture
def program(api: Api) -> dict[str, Any]:
    return api.program()


@pytest.fixture
def method(api: Api, program: dict[str, Any]) -> dict[str, Any]:
    partner = api.partner(program["id"])
    response = api.client.put(f"/api/v1/partners/{partner['id']}/payout-method", json=SEPA, headers=api.headers())
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def verify(api: Api, method: dict[str, Any], key: str | None = None, **body: Any) -> Any:
    payload = {"method_id": method["id"], "note": "bank letter on file", **body}
    return api.post(f"/partners/{method['partner_id']}/payout-method/verify", payload, key=key)


def error_of(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    return response.json()["error"]  # type: ignore[no-any-return]


class TestVerify:
    def test_someone_else_with_payouts_verifies_and_it_is_read_back_audited(
        self, api: Api, method: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        checker = api.key_for(session_factory, scopes=["read", "payouts"])
        response = verify(api, method, key=checker)
        assert response.status_code == 200, response.text
        assert response.json()["verified"] is True and response.json()["iban"] == "DE89 •••• •••• •••• 3000"
        read = api.get(f"/partners/{method['partner_id']}/payout-method")
        assert read.json()["verified"] is True
        with session_factory() as s:
            entry = s.scalars(select(AuditEntry).where(AuditEntry.action == "payout_method.verify")).one()
            assert entry.object_id == method["id"] and entry.after["note"] == "bank letter on file"
            assert "DE89370400440532013000" not in str(entry.after)
        assert verify(api, method, key=checker).status_code == 200  # again: already verified, nothing new

    def test_whoever_entered_the_details_may_not_verify_them(self, api: Api, method: dict[str, Any]) -> None:
        error = error_of(verify(api, method), 403)
        assert "you entered these payout details" in error["message"]
        assert api.get(f"/partners/{method['partner_id']}/payout-method").json()["verified"] is False

    def test_without_the_payouts_scope_it_is_refused_with_the_reason(
        self, api: Api, method: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        writer = api.key_for(session_factory, scopes=["read", "write", "approve"])
        assert "scope 'payouts'" in error_of(verify(api, method, key=writer), 403)["message"]

    def test_a_replaced_method_is_not_verified_by_a_stale_id(
        self, api: Api, method: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        checker = api.key_for(session_factory, scopes=["read", "payouts"])
        new = {**SEPA, "iban": "FR14 2004 1010 0505 0001 3M02 606"}
        replaced = api.client.put(
            f"/api/v1/partners/{method['partner_id']}/payout-method", json=new, headers=api.headers()
        )
        assert replaced.status_code == 200, replaced.text
        error = error_of(verify(api, method, key=checker), 409)
        assert error["field"] == "method_id" and replaced.json()["id"] in error["message"]
        assert verify(api, replaced.json(), key=checker).json()["verified"] is True

    @pytest.mark.parametrize(("body", "status", "field"), [({"note": "  "}, 422, "note"), ({"note": 7}, 422, "note")])
    def test_bad_input_names_the_field(
        self,
        api: Api,
        method: dict[str, Any],
        session_factory: sessionmaker[Session],
        body: dict[str, Any],
        status: int,
        field: str,
    ) -> None:
        checker = api.key_for(session_factory, scopes=["read", "payouts"])
        assert field in str(error_of(verify(api, method, key=checker, **body), status))

    def test_another_programs_partner_is_not_found(
        self, api: Api, method: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        elsewhere = api.program(name="Other")
        outsider = api.key_for(session_factory, program_id=elsewhere["id"], scopes=["read", "payouts"])
        assert verify(api, method, key=outsider).status_code == 404


class TestTheRunGate:
    def test_a_verified_method_passes_the_gate_and_an_unverified_one_is_skipped(
        self, api: Api, program: dict[str, Any], method: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        gate = api.client.put(
            f"/api/v1/programs/{program['id']}/payout-schedule",
            json={"schedule": "manual", "require_verified_method": True},
            headers=api.headers(),
        )
        assert gate.status_code == 200, gate.text
        other = api.partner(program["id"], name="Beta Media")
        for partner_id in (method["partner_id"], other["id"]):
            event = {
                "program_id": program["id"], "type": "invoice_paid", "external_id": f"inv-{partner_id}",
                "occurred_at": "2025-11-01T00:00:00Z", "customer_external_id": f"c-{partner_id}",
                "partner_id": partner_id, "amount": 10_000, "currency": "EUR",
            }  # fmt: skip
            made = api.post("/events", event)
            assert made.status_code == 201, made.text
            ids = [c["id"] for c in made.json()["commissions"]]
            assert api.post("/commissions/approve", {"ids": ids}).status_code == 200
        api.client.put(
            f"/api/v1/partners/{other['id']}/payout-method", json=SEPA, headers=api.headers()
        )  # entered, never verified
        checker = api.key_for(session_factory, scopes=["read", "payouts"])
        assert verify(api, method, key=checker).status_code == 200
        run = api.post("/payout-runs", {"program_id": program["id"], "as_of": "2026-03-01T00:00:00Z"})
        assert run.status_code == 201, run.text
        assert [p["partner_id"] for p in run.json()["payouts"]] == [method["partner_id"]]
        assert [(s["partner_id"], s["reason"]) for s in run.json()["skipped"]] == [
            (other["id"], "no_verified_payout_method")
        ]


class TestConsole:
    def test_finance_verifies_on_the_partner_page_and_a_manager_is_not_offered_it(self, world: World) -> None:
        with world.factory() as s:
            partner = s.get(Partner, world.acme_id)
            assert partner is not None
            entered = set_payout_method(
                s, actor=SYSTEM, box=SecretBox("k" * 40), partner_id=partner.id, data=SEPA, now=world.clock.now()
            )
            s.commit()
        assert "Verify payout method" not in staff(world, "manager").get(f"/partners/{world.acme_id}").text
        finance = staff(world, "finance")
        page = f"/partners/{world.acme_id}"
        assert "not verified" in finance.get(page).text
        bad = finance.post(
            f"{page}/payout-method/verify",
            data={"csrf_token": csrf_of(finance, page), "method_id": entered.id, "note": " "},
            follow_redirects=False,
        )
        assert bad.status_code == 422 and "say how the account was checked" in bad.text
        done = finance.post(
            f"{page}/payout-method/verify",
            data={"csrf_token": csrf_of(finance, page), "method_id": entered.id, "note": "bank letter on file"},
            follow_redirects=False,
        )
        assert done.status_code == 303
        text = finance.get(page).text
        assert "Payout method verified." in text and ">verified<" in text and "Verify payout method" not in text
        with world.factory() as s:
            assert s.get(PayoutMethod, entered.id).verified is True  # type: ignore[union-attr]
