"""Issue 8's must-show: a partner disputes a line in the portal (with evidence), a manager resolves it with an
adjustment in the console, finance approves the adjustment line, and the partner sees it on the next statement."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from partnerpay.commissions.models import CommissionLine
from partnerpay.disputes.models import Dispute, DisputeEvidence
from partnerpay.kit.clock import FixedClock
from partnerpay.partners.service import add_partner_user
from partnerpay.settings import Settings
from partnerpay.statements.service import partner_statement
from partnerpay.web.app import create_app
from tests import factories
from tests.e2e.conftest import serve

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"
PDF = b"%PDF-1.4\n% invoice INV-2026-001 for Globex, Pro plan, 1,200.00 EUR\n"


@dataclass
class Demo:
    base_url: str
    factory: sessionmaker[Session]
    line_id: str
    partner_id: str
    month: str
    now: datetime


@pytest.fixture
def demo(
    database_url: str, session_factory: sessionmaker[Session], clock: FixedClock, tmp_path: Path
) -> Iterator[Demo]:
    now = clock.now()
    with session_factory() as s:
        prog = factories.program(s, now, name="Acme Analytics partners", hold_days=30, default_percent_bp=2000)
        partner = factories.partner(s, prog, now, "Northwind Media")
        add_partner_user(s, actor=SYSTEM, partner_id=partner.id, email="demo@northwind.example", password=PASSWORD,
                         now=now)  # fmt: skip
        for role in ("manager", "finance"):
            create_staff_user(s, actor=SYSTEM, email=f"{role}@example.com", role=role, password=PASSWORD, now=now)
        (line,) = factories.event(
            s, prog, now, external_id="inv_globex_1", customer="globex", amount=120_000, partner_id=partner.id
        )  # fmt: skip  (20 % of €1,200.00 = €240.00)
        s.commit()
        line_id, partner_id = line.id, partner.id
    settings = Settings(database_url=database_url, secret_key="x" * 40, in_process_worker=False,
                        attachments_dir=str(tmp_path / "files"))  # fmt: skip
    app = create_app(settings, clock=clock)
    try:
        for base_url in serve(app):
            yield Demo(base_url, session_factory, line_id, partner_id, f"{now:%Y-%m}", now)
    finally:
        app.state.engine.dispose()


def log_in(page: Any, base_url: str, email: str, *, portal: bool) -> None:
    page.goto(f"{base_url}{'/portal/login' if portal else '/login'}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base_url}{'/portal' if portal else '/'}")


class TestDisputeFlow:
    def test_partner_disputes_staff_adjust_finance_approves_and_the_statement_shows_it(
        self, demo: Demo, chromium: Any
    ) -> None:
        from playwright.sync_api import expect

        errors: list[str] = []
        # 1. The partner disputes its line from Earnings, with an invoice as evidence.
        partner = chromium.new_context().new_page()
        partner.on("pageerror", lambda exc: errors.append(str(exc)))
        log_in(partner, demo.base_url, "demo@northwind.example", portal=True)
        partner.locator(f"#line-{demo.line_id}").get_by_role("link", name=f"Dispute line {demo.line_id}").click()
        expect(partner.locator("#disputed-line")).to_contain_text("€240.00")
        partner.get_by_label("The amount you expected (EUR)").fill("300.00")
        partner.get_by_label("What is wrong").fill("Globex is on the Pro plan: 25 %, not 20 %.")
        partner.set_input_files("#f-file", files=[{"name": "invoice.pdf", "mimeType": "application/pdf",
                                                   "buffer": PDF}])  # fmt: skip
        partner.get_by_role("button", name="Send dispute").click()
        expect(partner.get_by_role("status").first).to_contain_text("sent")
        expect(partner.locator("#dispute-status")).to_contain_text("open")
        expect(partner.locator("#dispute-status")).to_contain_text("due in 10 days")
        expect(partner.locator("#evidence")).to_contain_text("invoice.pdf")
        with demo.factory() as s:
            dispute = s.scalars(select(Dispute)).one()
            assert (dispute.amount, dispute.line_id) == (30_000, demo.line_id)
            assert s.scalars(select(DisputeEvidence.filename)).all() == ["invoice.pdf"]
            dispute_id = dispute.id

        # 2. A manager sees it in the queue, the data side by side, and resolves it with the suggested adjustment.
        manager = chromium.new_context().new_page()
        manager.on("pageerror", lambda exc: errors.append(str(exc)))
        log_in(manager, demo.base_url, "manager@example.com", portal=False)
        manager.goto(f"{demo.base_url}/disputes")
        row = manager.locator(f"#dispute-{dispute_id}")
        expect(row).to_contain_text("Northwind Media")
        expect(row).to_contain_text("nobody yet")
        row.get_by_role("link", name=dispute_id).click()
        expect(manager.locator("#case-line")).to_contain_text("€240.00")
        expect(manager.locator("#case-event")).to_contain_text("inv_globex_1")
        expect(manager.locator("#case-customer")).to_contain_text("globex")
        expect(manager.get_by_label("Adjustment (EUR)")).to_have_value("60.00")
        manager.locator("#f-adjust-reason").fill("Pro plan rate confirmed, difference added")
        manager.get_by_role("button", name="Resolve with an adjustment").click()
        expect(manager.get_by_role("status").first).to_contain_text("is pending")
        with demo.factory() as s:
            resolved = s.get(Dispute, dispute_id)
            assert resolved is not None and resolved.status == "resolved_adjusted"
            adjustment_id = resolved.adjustment_line_id
            assert adjustment_id is not None

        # 3. Finance approves the adjustment line like any line (the manager who made it may not).
        finance = chromium.new_context().new_page()
        finance.on("pageerror", lambda exc: errors.append(str(exc)))
        log_in(finance, demo.base_url, "finance@example.com", portal=False)
        finance.goto(f"{demo.base_url}/commissions")
        line_row = finance.locator(f"#line-{adjustment_id}")
        expect(line_row).to_contain_text("€60.00")
        line_row.get_by_role("button", name="Approve").click()
        expect(line_row.locator(".badge")).to_have_text("approved")
        with demo.factory() as s:
            adjustment = s.get(CommissionLine, adjustment_id)
            assert adjustment is not None and (adjustment.status, adjustment.amount) == ("approved", 6_000)

        # 4. The partner sees the answer, the approved adjustment, and the line on its statement.
        partner.goto(f"{demo.base_url}/portal/disputes/{dispute_id}")
        expect(partner.locator("#dispute-answer")).to_contain_text("Pro plan rate confirmed")
        expect(partner.locator("#dispute-adjustment")).to_contain_text("approved")
        partner.goto(f"{demo.base_url}/portal/statements")
        with partner.expect_download() as download:
            partner.locator(f'a[href="/portal/statements/{demo.month}.csv"]').click()
        statement = Path(download.value.path()).read_text()
        assert adjustment_id in statement and f"dispute {dispute_id}" in statement and "60.00" in statement
        with demo.factory() as s:
            issued = partner_statement(s, actor=SYSTEM, partner_id=demo.partner_id, period=demo.month, now=demo.now)
            rows = [r for c in issued.content["currencies"] for r in c["rows"] if r["reference"] == adjustment_id]
            assert [(r["type"], r["amount"]) for r in rows] == [("adjustment", 6_000)]
            assert download.value.suggested_filename.endswith(".csv") and issued.sha256 in statement
        assert errors == []
