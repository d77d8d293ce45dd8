"""Console and portal pages through HTTP: logins, CSRF, role errors, approvals, batches and partner isolation."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.schemas import EventIn, EventType
from partnerpay.events.service import record_event
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.ids import new_id
from partnerpay.messaging.models import Notification
from partnerpay.partners.service import add_partner_user, create_partner
from partnerpay.payouts.models import PayoutBatch
from partnerpay.programs.service import create_program
from partnerpay.settings import Settings
from partnerpay.web.app import create_app

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
ROLE_ERROR = "approving commissions needs the finance or owner role"


@dataclass
class World:
    app: FastAPI
    clock: FixedClock
    factory: sessionmaker[Session]
    program_id: str
    acme_id: str
    beta_id: str
    acme_line: str
    beta_line: str

    def client(self) -> TestClient:
        return TestClient(self.app)

    def status_of(self, line_id: str) -> str:
        with self.factory() as s:
            line = s.get(CommissionLine, line_id)
            assert line is not None
            return line.status

    def invoice(self, partner_id: str, external_id: str, amount: int, type: EventType = EventType.INVOICE_PAID) -> str:
        with self.factory() as s:
            recorded = record_event(
                s,
                actor=SYSTEM,
                now=self.clock.now(),
                data=EventIn(
                    program_id=self.program_id,
                    type=type,
                    external_id=external_id,
                    occurred_at=self.clock.now(),
                    customer_external_id=f"cus_{external_id}",
                    partner_id=partner_id,
                    amount=amount,
                    currency="EUR",
                    original_external_id=None,
                ),
            )
            s.commit()
            return recorded.commissions[0].id if recorded.commissions else ""


@pytest.fixture
def world(database_url: str, session_factory: sessionmaker[Session], clock: FixedClock) -> Iterator[World]:
    now = clock.now()
    with session_factory() as s:
        program = create_program(
            s, actor=SYSTEM, name="Demo program", currency="EUR", hold_days=30, default_percent_bp=2000, now=now
        )
        acme = create_partner(
            s, actor=SYSTEM, program_id=program.id, name="Acme Media", email="acme@example.com", now=now
        )
        beta = create_partner(
            s, actor=SYSTEM, program_id=program.id, name="Beta Blog", email="beta@example.com", now=now
        )
        for role in ("finance", "manager", "viewer"):
            create_staff_user(s, actor=SYSTEM, email=f"{role}@example.com", role=role, password=PASSWORD, now=now)
        add_partner_user(s, actor=SYSTEM, partner_id=acme.id, email="portal@acme.example", password=PASSWORD, now=now)
        add_partner_user(s, actor=SYSTEM, partner_id=beta.id, email="portal@beta.example", password=PASSWORD, now=now)
        s.commit()
        program_id, acme_id, beta_id = program.id, acme.id, beta.id
    app = create_app(Settings(database_url=database_url, secret_key="x" * 40, in_process_worker=False), clock=clock)
    w = World(app, clock, session_factory, program_id, acme_id, beta_id, "", "")
    w.acme_line = w.invoice(acme_id, "inv_acme", 120_000)  # 20 % = €240.00
    w.beta_line = w.invoice(beta_id, "inv_beta", 50_005)  # 20 % = €100.01
    yield w
    app.state.engine.dispose()


def csrf_of(client: TestClient, path: str) -> str:
    match = CSRF.search(client.get(path).text)
    assert match, f"no CSRF field on {path}"
    return match.group(1)


def login(client: TestClient, email: str, *, portal: bool = False) -> TestClient:
    path = "/portal/login" if portal else "/login"
    token = csrf_of(client, path)
    response = client.post(path, data={"email": email, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 200, response.text
    return client


def staff(world: World, role: str) -> TestClient:
    return login(world.client(), f"{role}@example.com")


HTMX = {"HX-Request": "true"}


class TestConsoleLogin:
    @pytest.mark.parametrize(
        "path", ["/", "/commissions", "/partners", "/payouts", "/verify", "/payouts/batches/bat_x"]
    )
    def test_every_console_page_redirects_to_login_when_logged_out(self, world: World, path: str) -> None:
        response = world.client().get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")

    def test_an_htmx_request_without_a_session_is_sent_to_the_login_page_whole(self, world: World) -> None:
        response = world.client().post(f"/commissions/{world.acme_line}/approve", headers=HTMX)
        assert response.status_code == 204 and response.headers["hx-redirect"] == "/login"

    def test_a_bad_password_shows_a_clear_error_and_keeps_the_email(self, world: World) -> None:
        client = world.client()
        token = csrf_of(client, "/login")
        response = client.post("/login", data={"email": "finance@example.com", "password": "nope", "csrf_token": token})
        assert response.status_code == 401
        assert "do not match a staff account" in response.text
        assert 'value="finance@example.com"' in response.text
        assert client.get("/", follow_redirects=False).status_code == 303

    def test_password_guessing_is_rate_limited_per_account(self, world: World) -> None:
        client = world.client()
        token = csrf_of(client, "/login")
        statuses = [
            client.post(
                "/login", data={"email": "finance@example.com", "password": f"guess-{n}", "csrf_token": token}
            ).status_code
            for n in range(11)
        ]
        assert statuses == [401] * 10 + [429]
        blocked = client.post(
            "/login", data={"email": "finance@example.com", "password": PASSWORD, "csrf_token": token}
        )
        assert blocked.status_code == 429 and "too many login attempts" in blocked.text
        assert int(blocked.headers["retry-after"]) > 0
        world.clock.advance(timedelta(minutes=16))
        assert login(world.client(), "finance@example.com")

    def test_login_form_without_csrf_token_is_refused(self, world: World) -> None:
        client = world.client()
        client.get("/login")
        response = client.post("/login", data={"email": "finance@example.com", "password": PASSWORD})
        assert response.status_code == 403
        assert "reload the page" in response.text

    def test_login_returns_to_the_page_asked_for_but_never_to_another_site(self, world: World) -> None:
        client = world.client()
        token = csrf_of(client, "/login?next=/partners")
        ok = client.post(
            "/login",
            data={"email": "viewer@example.com", "password": PASSWORD, "csrf_token": token, "next": "/partners"},
            follow_redirects=False,
        )
        assert ok.headers["location"] == "/partners"
        other = world.client()
        token = csrf_of(other, "/login")
        evil = other.post(
            "/login",
            data={"email": "viewer@example.com", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/"},
            follow_redirects=False,
        )
        assert evil.headers["location"] == "/"

    def test_logout_ends_the_session(self, world: World) -> None:
        client = staff(world, "finance")
        response = client.post("/logout", data={"csrf_token": csrf_of(client, "/")})
        assert "You are logged out" in response.text
        assert client.get("/", follow_redirects=False).status_code == 303


class TestCommissionsPage:
    def test_pending_lines_show_partner_amount_badge_hold_and_explanation(self, world: World) -> None:
        page = staff(world, "viewer").get("/commissions")
        assert page.status_code == 200
        assert "Acme Media" in page.text and "€240.00" in page.text and "€100.01" in page.text
        assert 'badge-pending">pending' in page.text
        assert "14 Feb 2026" in page.text  # hold until
        assert "20 % of €1,200.00 invoice inv_acme" in page.text
        assert "2</strong> pending lines" in page.text

    def test_form_post_without_csrf_token_is_refused_and_the_line_stays_pending(self, world: World) -> None:
        client = staff(world, "finance")
        response = client.post(f"/commissions/{world.acme_line}/approve", data={})
        assert response.status_code == 403
        assert world.status_of(world.acme_line) == "pending"

    def test_a_manager_approving_sees_the_role_error_and_the_line_stays_pending(self, world: World) -> None:
        client = staff(world, "manager")
        token = csrf_of(client, "/commissions")
        response = client.post(f"/commissions/{world.acme_line}/approve", data={"csrf_token": token})
        assert response.status_code == 403
        assert ROLE_ERROR in response.text
        assert "<table" in response.text, "the error is shown on the commissions page, not a bare error page"
        assert world.status_of(world.acme_line) == "pending"

    def test_a_viewer_approving_with_htmx_gets_the_row_back_with_the_error_inline(self, world: World) -> None:
        client = staff(world, "viewer")
        token = csrf_of(client, "/commissions")
        response = client.post(f"/commissions/{world.acme_line}/approve", headers={**HTMX, "X-CSRF-Token": token})
        assert response.status_code == 403
        assert response.text.lstrip().startswith(f'<tr id="line-{world.acme_line}"')
        assert ROLE_ERROR in response.text and "<html" not in response.text
        assert world.status_of(world.acme_line) == "pending"

    def test_finance_approves_one_line_with_htmx_and_the_row_shows_approved(self, world: World) -> None:
        client = staff(world, "finance")
        token = csrf_of(client, "/commissions")
        response = client.post(f"/commissions/{world.acme_line}/approve", headers={**HTMX, "X-CSRF-Token": token})
        assert response.status_code == 200
        assert 'badge-approved">approved' in response.text and "<html" not in response.text
        assert world.status_of(world.acme_line) == "approved"
        assert world.status_of(world.beta_line) == "pending"

    def test_finance_approves_a_selection_without_js_and_is_told_what_was_approved(self, world: World) -> None:
        client = staff(world, "finance")
        token = csrf_of(client, "/commissions")
        response = client.post(
            "/commissions/approve",
            data={
                "ids": [world.acme_line, world.beta_line],
                "csrf_token": token,
                "next": "/commissions?status=pending",
            },
            follow_redirects=False,
        )
        assert response.status_code == 303 and response.headers["location"] == "/commissions?status=pending"
        page = client.get(response.headers["location"])
        assert "Approved 2 lines: €340.01" in page.text
        assert "No lines awaiting approval" in page.text
        assert {world.status_of(world.acme_line), world.status_of(world.beta_line)} == {"approved"}

    def test_approve_selected_with_nothing_ticked_says_so(self, world: World) -> None:
        client = staff(world, "finance")
        token = csrf_of(client, "/commissions")
        response = client.post("/commissions/approve", data={"csrf_token": token})
        assert response.status_code == 422 and "tick the lines to approve" in response.text

    def test_a_clawback_is_visibly_negative(self, world: World) -> None:
        world.clock.advance(timedelta(days=1))
        with world.factory() as s:
            record_event(
                s,
                actor=SYSTEM,
                now=world.clock.now(),
                data=EventIn(
                    program_id=world.program_id,
                    type=EventType.REFUND,
                    external_id="ref_1",
                    occurred_at=world.clock.now(),
                    customer_external_id="cus_inv_acme",
                    amount=60_000,
                    currency="EUR",
                    original_external_id="inv_acme",
                ),
            )
            s.commit()
        page = staff(world, "viewer").get("/commissions?status=all")
        assert '<span class="money neg">-€120.00</span>' in page.text  # half of the €240.00 line, in red

    def test_an_unknown_status_filter_is_explained(self, world: World) -> None:
        page = staff(world, "viewer").get("/commissions?status=done")
        assert page.status_code == 422 and "status must be one of" in page.text


class TestDashboardAndPartners:
    def test_dashboard_shows_totals_per_status_and_the_approval_queue(self, world: World) -> None:
        page = staff(world, "viewer").get("/")
        assert page.status_code == 200
        assert "Demo program" in page.text and "€340.01" in page.text  # pending total
        assert f"/commissions?status=pending&amp;program_id={world.program_id}" in page.text
        assert "2</strong> commission lines awaiting approval" in page.text
        assert 'href="/verify"' in page.text
        assert '<link rel="stylesheet" href="/static/app.css">' in page.text
        assert world.client().get("/static/app.css").status_code == 200

    def test_verify_page_says_everything_ties_out(self, world: World) -> None:
        page = staff(world, "viewer").get("/verify")
        assert "Everything ties out" in page.text

    def test_partners_can_be_searched_and_filtered(self, world: World) -> None:
        client = staff(world, "viewer")
        assert "Acme Media" in client.get("/partners").text and "Beta Blog" in client.get("/partners").text
        found = client.get("/partners", params={"q": "ACME"}).text
        assert "Acme Media" in found and "Beta Blog" not in found
        assert "No partner matches" in client.get("/partners", params={"status": "suspended"}).text


class TestPayoutPages:
    def test_a_run_makes_a_batch_whose_page_ties_out_and_whose_csv_downloads(self, world: World) -> None:
        client = staff(world, "finance")
        token = csrf_of(client, "/commissions")
        client.post("/commissions/approve", data={"ids": [world.acme_line, world.beta_line], "csrf_token": token})
        world.clock.advance(timedelta(days=31))
        assert "€340.01" in client.get("/payouts").text  # payable now
        response = client.post(
            "/payouts/runs", data={"program_id": world.program_id, "csrf_token": token}, follow_redirects=False
        )
        assert response.status_code == 303
        batch_url = response.headers["location"]
        batch_id = batch_url.rsplit("/", 1)[-1]
        page = client.get(batch_url)
        assert "made draft batch" in page.text and 'badge-draft">draft' in page.text
        assert "Ties out" in page.text and "Export file control sum" in page.text
        assert "Acme Media" in page.text and "€240.00" in page.text

        export = client.get(f"{batch_url}/export.csv")
        assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
        assert export.headers["x-control-sum"] == "34001"
        rows = list(csv.DictReader(io.StringIO(export.text)))
        assert sum(int(r["amount_minor"]) for r in rows) == 34_001 and len(rows) == 2

        approved = client.post(f"{batch_url}/approve", data={"csrf_token": token})
        assert "approved" in approved.text and "Mark paid" in approved.text
        paid = client.post(f"{batch_url}/mark-paid", data={"csrf_token": token})
        assert f"Batch {batch_id} marked paid" in paid.text
        with world.factory() as s:
            batch = s.get(PayoutBatch, batch_id)
            assert batch is not None and batch.status == "paid"
        assert world.status_of(world.acme_line) == "paid"

    def test_a_manager_cannot_create_a_payout_run_and_is_told_why(self, world: World) -> None:
        client = staff(world, "manager")
        token = csrf_of(client, "/payouts")
        response = client.post("/payouts/runs", data={"program_id": world.program_id, "csrf_token": token})
        assert response.status_code == 403 and "needs the finance or owner role" in response.text

    def test_an_unknown_batch_is_a_friendly_404(self, world: World) -> None:
        response = staff(world, "viewer").get("/payouts/batches/bat_nope")
        assert response.status_code == 404 and "payout batch bat_nope not found" in response.text


class TestPortal:
    def test_an_unauthenticated_visit_redirects_to_the_portal_login(self, world: World) -> None:
        response = world.client().get("/portal", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/portal/login")

    def test_a_partner_sees_only_its_own_lines_with_what_happens_next(self, world: World) -> None:
        with world.factory() as s:
            s.add(
                Notification(
                    id=new_id("ntf"),
                    partner_id=world.acme_id,
                    kind="commission.approved",
                    text="1 commission line(s) approved: €240.00",
                    job_id=new_id("job"),
                    created_at=world.clock.now(),
                )
            )
            s.add(
                Notification(
                    id=new_id("ntf"),
                    partner_id=world.beta_id,
                    kind="commission.approved",
                    text="beta secret note",
                    job_id=new_id("job"),
                    created_at=world.clock.now(),
                )
            )
            s.commit()
        page = login(world.client(), "portal@acme.example", portal=True).get("/portal")
        assert page.status_code == 200
        assert world.acme_line in page.text and "€240.00" in page.text
        assert world.beta_line not in page.text and "Beta Blog" not in page.text and "€100.01" not in page.text
        assert "waiting for approval; on hold until 14 Feb 2026 — refund window" in page.text
        assert "1 commission line(s) approved: €240.00" in page.text and "beta secret note" not in page.text

    def test_lines_say_when_they_will_be_paid_as_they_move(self, world: World) -> None:
        finance = staff(world, "finance")
        token = csrf_of(finance, "/commissions")
        finance.post(f"/commissions/{world.acme_line}/approve", data={"csrf_token": token})
        partner = login(world.client(), "portal@acme.example", portal=True)
        assert (
            "approved; on hold until 14 Feb 2026 — refund window, then in the next payout run"
            in partner.get("/portal").text
        )
        world.clock.advance(timedelta(days=31))
        assert "approved, in the next payout run" in partner.get("/portal").text
        finance.post("/payouts/runs", data={"program_id": world.program_id, "csrf_token": token})
        assert re.search(r"in batch bat_\w+ \(draft\)", partner.get("/portal").text)

    def test_a_staff_session_does_not_open_the_portal_and_a_partner_session_not_the_console(self, world: World) -> None:
        assert staff(world, "finance").get("/portal", follow_redirects=False).status_code == 303
        partner = login(world.client(), "portal@acme.example", portal=True)
        assert partner.get("/", follow_redirects=False).headers["location"].startswith("/login")

    def test_portal_login_ignores_the_case_of_the_email(self, world: World) -> None:
        client = login(world.client(), "Portal@ACME.example", portal=True)
        assert client.get("/portal", follow_redirects=False).status_code == 200

    def test_a_bad_portal_password_shows_an_error(self, world: World) -> None:
        client = world.client()
        token = csrf_of(client, "/portal/login")
        response = client.post(
            "/portal/login", data={"email": "portal@acme.example", "password": "x", "csrf_token": token}
        )
        assert response.status_code == 401 and "do not match a partner account" in response.text
