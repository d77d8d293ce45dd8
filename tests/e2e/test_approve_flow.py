"""Finance logs in, approves a line with one click (HTMX), and the row and the database both say approved."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from partnerpay.commissions.decisions import approve_lines
from partnerpay.commissions.models import CommissionLine
from partnerpay.events.schemas import EventType
from partnerpay.kit.clock import FixedClock
from partnerpay.partners.service import add_partner_user
from partnerpay.payouts.service import approve_batch, create_payout_run, mark_batch_paid
from partnerpay.settings import Settings
from partnerpay.web.app import create_app
from tests import factories
from tests.e2e.conftest import serve

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"
DASHBOARD_PNG = "/tmp/dashboard.png"


@dataclass
class Demo:
    base_url: str
    factory: sessionmaker[Session]
    line_to_approve: str


def build_demo(session: Session, clock: FixedClock) -> str:
    """A program with history: a paid batch, a draft batch, payable, on-hold and pending lines, a clawback."""
    now = clock.now()
    prog = factories.program(session, now, name="Acme Analytics partners", hold_days=30, default_percent_bp=2000)
    names = ["Northwind Media", "Brightside Blog", "Cobalt Consulting", "Delta Devs", "Evergreen Agency"]
    partners = [factories.partner(session, prog, now, name) for name in names]
    add_partner_user(
        session, actor=SYSTEM, partner_id=partners[0].id, email="demo@northwind.example", password=PASSWORD, now=now
    )
    for role in ("finance", "viewer"):
        create_staff_user(session, actor=SYSTEM, email=f"{role}@example.com", role=role, password=PASSWORD, now=now)
    n = 0

    def sale(partner_index: int, days_ago: int, amount: int) -> str:
        nonlocal n
        n += 1
        lines = factories.event(
            session,
            prog,
            now,
            external_id=f"inv_{n:04d}",
            customer=f"cus_{n:04d}",
            amount=amount,
            partner_id=partners[partner_index].id,
            occurred_at=now - timedelta(days=days_ago),
        )
        return lines[0].id

    paid = [sale(0, 70, 249_000), sale(1, 65, 89_900), sale(2, 62, 120_000)]
    approve_lines(session, actor=SYSTEM, ids=paid, now=now)
    first = create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=now)
    assert first.batch is not None
    approve_batch(session, actor=SYSTEM, batch_id=first.batch.id, now=now)
    mark_batch_paid(session, actor=SYSTEM, batch_id=first.batch.id, now=now)
    batched = [sale(0, 45, 99_000), sale(3, 41, 310_000)]
    approve_lines(session, actor=SYSTEM, ids=batched, now=now)
    create_payout_run(session, actor=SYSTEM, program_id=prog.id, now=now)
    payable = [sale(1, 38, 45_000), sale(4, 33, 150_000)]
    on_hold = [sale(2, 12, 72_500), sale(3, 6, 18_000)]
    approve_lines(session, actor=SYSTEM, ids=payable + on_hold, now=now)
    pending = [sale(0, 3, 64_900), sale(4, 2, 230_000), sale(1, 1, 12_345)]
    factories.event(
        session,
        prog,
        now,
        external_id="ref_0001",
        customer="cus_0010",
        amount=6_000,
        type=EventType.REFUND,
        original_external_id="inv_0010",
    )
    session.commit()
    return pending[1]


@pytest.fixture
def demo(database_url: str, session_factory: sessionmaker[Session], clock: FixedClock) -> Iterator[Demo]:
    with session_factory() as session:
        line_id = build_demo(session, clock)
    app = create_app(Settings(database_url=database_url, secret_key="x" * 40, in_process_worker=False), clock=clock)
    try:
        for base_url in serve(app):
            yield Demo(base_url, session_factory, line_id)
    finally:
        app.state.engine.dispose()


def login(page: Any, base_url: str, role: str = "finance") -> None:
    page.goto(f"{base_url}/commissions")
    assert "/login" in page.url, "a console page sends a visitor to the login first"
    page.get_by_label("Email").fill(f"{role}@example.com")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}/commissions")


class TestApproveFlow:
    def test_finance_approves_a_line_in_the_browser_and_the_row_shows_approved(self, demo: Demo, chromium: Any) -> None:
        from playwright.sync_api import expect

        context = chromium.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        login(page, demo.base_url)

        row = page.locator(f"#line-{demo.line_to_approve}")
        expect(row.locator(".badge")).to_have_text("pending")
        with page.expect_response(lambda r: r.url.endswith(f"/commissions/{demo.line_to_approve}/approve")) as sent:
            row.get_by_role("button", name="Approve").click()
        assert sent.value.status == 200
        assert sent.value.request.headers.get("hx-request") == "true", "the click went through HTMX, not a reload"
        expect(row.locator(".badge")).to_have_text("approved")
        expect(row).to_contain_text("approved just now")
        assert page.url == f"{demo.base_url}/commissions", "the row was swapped in place"
        with demo.factory() as session:
            line = session.get(CommissionLine, demo.line_to_approve)
            assert line is not None and line.status == "approved"

        page.goto(f"{demo.base_url}/")
        expect(page.get_by_role("heading", name="Needs a decision")).to_be_visible()
        page.screenshot(path=DASHBOARD_PNG, full_page=True)
        phone = chromium.new_context(viewport={"width": 390, "height": 844}, storage_state=context.storage_state())
        phone_page = phone.new_page()
        phone_page.goto(f"{demo.base_url}/commissions")
        phone_page.screenshot(path="/tmp/commissions-phone.png", full_page=True)
        assert errors == []
        phone.close()
        context.close()

    def test_a_viewer_clicking_approve_sees_the_role_error_in_the_row(self, demo: Demo, chromium: Any) -> None:
        from playwright.sync_api import expect

        page = chromium.new_page()
        login(page, demo.base_url, role="viewer")
        row = page.locator(f"#line-{demo.line_to_approve}")
        row.get_by_role("button", name="Approve").click()
        expect(row.get_by_role("alert")).to_contain_text("approving commissions needs the finance or owner role")
        expect(row.locator(".badge")).to_have_text("pending")
        with demo.factory() as session:
            line = session.get(CommissionLine, demo.line_to_approve)
            assert line is not None and line.status == "pending"

    def test_finance_selects_every_line_on_the_page_and_approves_them_at_once(self, demo: Demo, chromium: Any) -> None:
        from playwright.sync_api import expect

        page = chromium.new_page()
        login(page, demo.base_url)
        page.get_by_label("Select every line on this page").check()
        page.get_by_role("button", name="Approve selected").click()
        expect(page.get_by_role("status").first).to_contain_text("Approved 4 lines")
        expect(page.get_by_text("No lines awaiting approval")).to_be_visible()
        with demo.factory() as session:
            pending = session.scalars(select(CommissionLine.id).where(CommissionLine.status == "pending")).all()
            assert pending == []
