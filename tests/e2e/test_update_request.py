"""Ask for an update, end to end: staff ask on the deal page, the partner answers in the portal, staff see it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from partnerpay.deals.leads import accept_leads, register_lead
from partnerpay.kit.clock import FixedClock
from partnerpay.partners.service import add_partner_user
from partnerpay.settings import Settings
from partnerpay.web.app import create_app
from tests import factories
from tests.e2e.conftest import serve

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"


@dataclass
class Pipeline:
    base_url: str
    deal_id: str


@pytest.fixture
def pipeline(database_url: str, session_factory: sessionmaker[Session], clock: FixedClock) -> Iterator[Pipeline]:
    now = clock.now()
    with session_factory() as s:
        prog = factories.program(s, now, name="Acme Analytics partners")
        partner = factories.partner(s, prog, now, "Northwind Media")
        add_partner_user(s, actor=SYSTEM, partner_id=partner.id, email="jo@northwind.example", password=PASSWORD,
                         now=now)  # fmt: skip
        create_staff_user(s, actor=SYSTEM, email="manager@example.com", role="manager", password=PASSWORD, now=now)
        lead = register_lead(s, actor=SYSTEM, program_id=prog.id, partner_id=partner.id, company="Globex Inc.",
                             domain="globex.com", expected_value=1_200_000, now=now)  # fmt: skip
        (deal,) = accept_leads(s, actor=SYSTEM, lead_ids=[lead.id], now=now)
        s.commit()
        deal_id = deal.id
    app = create_app(Settings(database_url=database_url, secret_key="x" * 40, in_process_worker=False), clock=clock)
    try:
        for base_url in serve(app):
            yield Pipeline(base_url, deal_id)
    finally:
        app.state.engine.dispose()


def log_in(page: Any, url: str, email: str) -> None:
    page.goto(url)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(url)


def test_staff_ask_the_partner_answers_in_the_portal_and_staff_see_the_answer(
    pipeline: Pipeline, chromium: Any
) -> None:
    from playwright.sync_api import expect

    deal_url = f"{pipeline.base_url}/deals/{pipeline.deal_id}"
    staff = chromium.new_context().new_page()
    errors: list[str] = []
    staff.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(staff, deal_url, "manager@example.com")
    staff.get_by_label("Ask for an update").fill("Did the demo with Globex happen?")
    staff.get_by_role("button", name="Ask for update").click()
    expect(staff.get_by_role("status").first).to_contain_text("Update asked")
    expect(staff.locator("#update-requests")).to_contain_text("not answered yet")

    partner = chromium.new_context().new_page()
    partner.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(partner, f"{pipeline.base_url}/portal", "jo@northwind.example")
    partner.get_by_role("link", name="Answer the team's update request on Globex Inc.").click()
    partner.wait_for_url(f"{pipeline.base_url}/portal/leads#upd-*")
    expect(partner.get_by_text("Did the demo with Globex happen?")).to_be_visible()
    partner.get_by_label("Your update on Globex Inc.").fill("Demo done; proposal goes out on Friday")
    partner.get_by_role("button", name="Send update").click()
    expect(partner.get_by_role("status").first).to_contain_text("your update is with the program team")
    expect(partner.locator("#update-requests")).to_have_count(0)

    staff.goto(deal_url)
    expect(staff.locator("#update-requests .answer-box")).to_have_text("Demo done; proposal goes out on Friday")
    expect(staff.locator("#timeline")).to_contain_text("Partner's update: Demo done; proposal goes out on Friday")
    expect(staff.locator("#last-update")).to_have_text("today")
    assert errors == []
