"""Manual adjustments over HTTP: the API (idempotent, validated, maker-checker), the partner page form, the portal."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.models import StaffUser
from partnerpay.auth.service import create_staff_user, staff_actor
from partnerpay.commissions.adjustments import add_adjustment
from partnerpay.commissions.models import CommissionLine
from partnerpay.kit.clock import FixedClock
from partnerpay.ledger.verify import verify
from partnerpay.partners.service import add_partner_user, create_partner
from partnerpay.programs.service import create_program
from partnerpay.settings import Settings
from partnerpay.web.app import create_app
from tests.api.conftest import Api
from tests.api.test_pages import PASSWORD, csrf_of, login

REASON = "missed referral Acme, see ticket 123"


def adjustment(partner: str, **changes: Any) -> dict[str, Any]:
    return {"partner_id": partner, "amount": 5_000, "currency": "EUR", "reason": REASON, **changes}


def lines(factory: sessionmaker[Session]) -> list[CommissionLine]:
    with factory() as s:
        return list(s.scalars(select(CommissionLine).where(CommissionLine.kind == "adjustment")).all())


class TestApi:
    def test_creates_a_pending_line_with_its_explanation_once_per_idempotency_key(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        prog = api.program()
        acme = api.partner(prog["id"])
        first = api.post("/commissions/adjustments", adjustment(acme["id"]), **{"Idempotency-Key": "adj-1"})
        assert first.status_code == 201, first.text
        body = first.json()
        assert (body["kind"], body["status"], body["amount"], body["reason"]) == (
            "adjustment",
            "pending",
            5_000,
            REASON,
        )
        assert (
            body["explanation"].startswith("Manual adjustment by ") and f"+€50.00 — '{REASON}'" in body["explanation"]
        )
        assert body["created_by"] is not None
        again = api.post("/commissions/adjustments", adjustment(acme["id"]), **{"Idempotency-Key": "adj-1"})
        assert again.status_code == 201 and again.json()["id"] == body["id"]
        assert again.headers["Idempotent-Replayed"] == "true"
        changed = api.post(
            "/commissions/adjustments", adjustment(acme["id"], amount=-5_000), **{"Idempotency-Key": "adj-1"}
        )
        assert changed.status_code == 409
        assert [line.id for line in lines(session_factory)] == [body["id"]]
        listed = api.get("/commissions", partner_id=acme["id"]).json()["data"]
        assert [(row["id"], row["kind"]) for row in listed] == [(body["id"], "adjustment")]

    @pytest.mark.parametrize(
        ("changes", "field"),
        [
            ({"amount": 12.5}, "amount"),
            ({"amount": "12.50"}, "amount"),
            ({"amount": 0}, "amount"),
            ({"currency": "USD"}, "currency"),
            ({"reason": ""}, "reason"),
            ({"reason": "x" * 501}, "reason"),
            ({"partner_id": "ptn_nope"}, "partner_id"),
            ({"color": "red"}, "color"),
        ],
    )
    def test_bad_input_names_the_field_and_writes_nothing(
        self, api: Api, session_factory: sessionmaker[Session], changes: dict[str, Any], field: str
    ) -> None:
        prog = api.program()
        acme = api.partner(prog["id"])
        response = api.post("/commissions/adjustments", adjustment(acme["id"], **changes))
        assert response.status_code in (404, 422), response.text
        assert response.json()["error"]["field"] == field
        assert lines(session_factory) == []

    def test_the_creator_cannot_approve_it_another_approver_can(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        prog = api.program()
        acme = api.partner(prog["id"])
        line = api.post("/commissions/adjustments", adjustment(acme["id"], amount=-1_234)).json()
        own = api.post("/commissions/approve", {"ids": [line["id"]]})
        assert own.status_code == 403 and line["id"] in own.json()["error"]["message"]
        checker = api.key_for(session_factory, scopes=["read", "approve"], name="checker")
        other = api.post("/commissions/approve", {"ids": [line["id"]]}, key=checker)
        assert other.status_code == 200, other.text
        assert other.json()["results"] == [{"id": line["id"], "status": "approved"}]
        with session_factory() as s:
            assert verify(s).ok

    def test_read_only_and_other_program_keys_are_refused(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        prog, other = api.program(), api.program(name="Other")
        acme = api.partner(prog["id"])
        reader = api.key_for(session_factory, scopes=["read"], name="reader")
        assert api.post("/commissions/adjustments", adjustment(acme["id"]), key=reader).status_code == 403
        scoped = api.key_for(session_factory, program_id=other["id"], scopes=["read", "write"], name="other")
        response = api.post("/commissions/adjustments", adjustment(acme["id"]), key=scoped)
        assert response.status_code == 404 and response.json()["error"]["field"] == "partner_id"
        assert lines(session_factory) == []


@dataclass
class World:
    app: FastAPI
    factory: sessionmaker[Session]
    clock: FixedClock
    acme_id: str
    beta_id: str


@pytest.fixture
def world(database_url: str, session_factory: sessionmaker[Session], clock: FixedClock) -> Iterator[World]:
    now = clock.now()
    with session_factory() as s:
        program = create_program(
            s, actor=SYSTEM, name="Demo", currency="EUR", hold_days=30, default_percent_bp=2000, now=now
        )
        acme = create_partner(s, actor=SYSTEM, program_id=program.id, name="Acme Media", email="a@example.com", now=now)
        beta = create_partner(s, actor=SYSTEM, program_id=program.id, name="Beta Blog", email="b@example.com", now=now)
        for role in ("finance", "owner", "viewer"):
            create_staff_user(s, actor=SYSTEM, email=f"{role}@example.com", role=role, password=PASSWORD, now=now)
        add_partner_user(s, actor=SYSTEM, partner_id=acme.id, email="portal@acme.example", password=PASSWORD, now=now)
        add_partner_user(s, actor=SYSTEM, partner_id=beta.id, email="portal@beta.example", password=PASSWORD, now=now)
        s.commit()
        acme_id, beta_id = acme.id, beta.id
    app = create_app(Settings(database_url=database_url, secret_key="x" * 40, in_process_worker=False), clock=clock)
    yield World(app, session_factory, clock, acme_id, beta_id)
    app.state.engine.dispose()


def staff(world: World, role: str) -> TestClient:
    return login(TestClient(world.app), f"{role}@example.com")


class TestConsole:
    def test_finance_adds_a_negative_adjustment_and_sees_it_in_the_commissions_list(self, world: World) -> None:
        client = staff(world, "finance")
        page = f"/partners/{world.acme_id}"
        form = client.get(page)
        assert 'action="/partners/' in form.text and "Add adjustment" in form.text
        response = client.post(
            f"{page}/adjustments",
            data={"amount": "-25.50", "adjust_reason": "duplicate invoice INV-9", "csrf_token": csrf_of(client, page)},
            follow_redirects=False,
        )
        assert response.status_code == 303, response.text
        [line] = lines(world.factory)
        assert (line.amount, line.partner_id, line.reason) == (-2_550, world.acme_id, "duplicate invoice INV-9")
        assert "waiting for approval" in client.get(page).text
        listed = client.get("/commissions").text
        assert line.id in listed and "adjustment" in listed and "duplicate invoice INV-9" in listed

    @pytest.mark.parametrize(
        ("amount", "reason", "words"),
        [
            ("12.345", "why", "more decimals than EUR allows"),
            ("ten", "why", "not a decimal amount"),
            ("0", "why", "must not be zero"),
            ("10.00", "", "a reason is required"),
        ],
    )
    def test_a_bad_form_shows_the_error_at_its_field_and_keeps_the_values(
        self, world: World, amount: str, reason: str, words: str
    ) -> None:
        client = staff(world, "finance")
        page = f"/partners/{world.acme_id}"
        response = client.post(
            f"{page}/adjustments", data={"amount": amount, "adjust_reason": reason, "csrf_token": csrf_of(client, page)}
        )
        assert response.status_code == 422
        field = "adjust_reason" if words.startswith("a reason") else "amount"
        error = re.search(f'id="f-{field}-error" role="alert">([^<]*)<', response.text)
        assert error and words in error.group(1)
        assert f'value="{amount}"' in response.text
        assert lines(world.factory) == []

    def test_without_csrf_token_or_write_role_nothing_is_added(self, world: World) -> None:
        page = f"/partners/{world.acme_id}"
        finance = staff(world, "finance")
        no_token = finance.post(f"{page}/adjustments", data={"amount": "10.00", "adjust_reason": "why"})
        assert no_token.status_code == 403 and "did not come from this site" in no_token.text
        viewer = staff(world, "viewer")
        refused = viewer.post(
            f"{page}/adjustments", data={"amount": "10.00", "adjust_reason": "why", "csrf_token": csrf_of(viewer, page)}
        )
        assert refused.status_code == 403 and "adding an adjustment needs the &#39;write&#39; scope" in refused.text
        assert lines(world.factory) == []

    def test_the_creator_approving_from_the_list_is_told_someone_else_must(self, world: World) -> None:
        finance = staff(world, "finance")
        page = f"/partners/{world.acme_id}"
        finance.post(
            f"{page}/adjustments",
            data={"amount": "50", "adjust_reason": "bonus", "csrf_token": csrf_of(finance, page)},
        )
        [line] = lines(world.factory)
        token = csrf_of(finance, "/commissions")
        refused = finance.post(f"/commissions/{line.id}/approve", data={"csrf_token": token})
        assert refused.status_code == 403 and "someone else must approve" in refused.text
        owner = staff(world, "owner")
        approved = owner.post(
            f"/commissions/{line.id}/approve",
            data={"csrf_token": csrf_of(owner, "/commissions")},
            follow_redirects=False,
        )
        assert approved.status_code == 303
        assert [x.status for x in lines(world.factory)] == ["approved"]


class TestPortal:
    def test_a_partner_sees_its_own_adjustment_with_the_reason_and_no_one_elses(self, world: World) -> None:
        with world.factory() as s:
            ana = staff_actor(s.scalars(select(StaffUser).where(StaffUser.email == "finance@example.com")).one())
            mine = add_adjustment(
                s,
                actor=ana,
                partner_id=world.acme_id,
                amount=5_000,
                currency="EUR",
                reason="launch bonus",
                now=world.clock.now(),
            )
            theirs = add_adjustment(
                s,
                actor=ana,
                partner_id=world.beta_id,
                amount=-900,
                currency="EUR",
                reason="beta secret reason",
                now=world.clock.now(),
            )
            s.commit()
            mine_id, theirs_id = mine.id, theirs.id
        page = login(TestClient(world.app), "portal@acme.example", portal=True).get("/portal")
        assert page.status_code == 200
        assert mine_id in page.text and "launch bonus" in page.text and "adjustment" in page.text
        assert "€50.00" in page.text
        assert theirs_id not in page.text and "beta secret reason" not in page.text
