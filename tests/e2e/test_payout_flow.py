"""Money out in the browser: finance approves a batch above the second-approval threshold, a second finance
user approves it and presses Pay all, the app's own worker pays through Stripe (a local fake speaking the
documented API), the batch page shows the statuses, and the partner sees the payout paid with its date."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.approvals.policy import put_policy
from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from partnerpay.commissions.decisions import approve_lines
from partnerpay.integrations.settings_store import put_integration
from partnerpay.kit.clock import FixedClock
from partnerpay.partners.payout_details import set_payout_method
from partnerpay.partners.service import add_partner_user
from partnerpay.payouts.run import create_payout_run
from partnerpay.settings import Settings
from partnerpay.web.app import create_app
from tests import factories
from tests.e2e.conftest import serve
from tests.integration.payout_rail_fakes import FakeStripe, serving

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"
KEY = "x" * 40


@dataclass
class World:
    base_url: str
    batch_id: str
    stripe: FakeStripe


@pytest.fixture
def world(database_url: str, session_factory: sessionmaker[Session], clock: FixedClock) -> Iterator[World]:
    settings = Settings(database_url=database_url, secret_key=KEY, in_process_worker=True, worker_poll_seconds=0.2)
    box = settings.secret_box()
    t0 = clock.now() - timedelta(days=40)
    with serving(FakeStripe()) as stripe:
        assert isinstance(stripe, FakeStripe)
        with session_factory() as s:
            prog = factories.program(s, t0, name="Acme Analytics partners")
            partner = factories.partner(s, prog, t0, "Northwind Media")
            add_partner_user(
                s, actor=SYSTEM, partner_id=partner.id, email="jo@northwind.example", password=PASSWORD, now=t0
            )
            for n in (1, 2):
                create_staff_user(
                    s, actor=SYSTEM, email=f"finance{n}@example.com", role="finance", password=PASSWORD, now=t0
                )
            set_payout_method(
                s,
                actor=SYSTEM,
                box=box,
                partner_id=partner.id,
                data={"type": "stripe_connect", "account_id": "acct_1Nv0FGQ9RKHgCVdK"},
                now=t0,
            )
            put_integration(
                s,
                actor=SYSTEM,
                box=box,
                program_id=prog.id,
                provider="stripe",
                body={"api_key": "sk_test_4eC39HqLyjWDarjtT1zdp7dc", "base_url": stripe.url},
                now=t0,
            )
            put_policy(s, actor=SYSTEM, program_id=prog.id, raw={"batch_second_approval_above": 10_000}, now=t0)
            lines = factories.event(
                s, prog, t0, external_id="inv_0001", customer="cus_1", amount=249_000, partner_id=partner.id
            )
            approve_lines(s, actor=SYSTEM, ids=[line.id for line in lines], now=t0)
            run = create_payout_run(s, actor=SYSTEM, program_id=prog.id, now=clock.now())
            assert run.batch is not None and run.batch.total == 49_800  # 20 % of €2,490.00, above €100.00
            batch_id = run.batch.id
            s.commit()
        app = create_app(settings, clock=clock)
        try:
            for base_url in serve(app):
                yield World(base_url, batch_id, stripe)
        finally:
            app.state.engine.dispose()


def log_in(page: Any, url: str, email: str) -> None:
    page.goto(url)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(url)


def test_two_finance_users_approve_one_pays_all_and_the_partner_sees_it_paid(world: World, chromium: Any) -> None:
    from playwright.sync_api import expect

    batch_url = f"{world.base_url}/payouts/batches/{world.batch_id}"
    errors: list[str] = []

    first = chromium.new_context().new_page()
    first.on("dialog", lambda dialog: dialog.accept())  # the data-confirm questions
    first.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(first, batch_url, "finance1@example.com")
    first.get_by_role("button", name="Approve batch").click()
    expect(first.locator(".awaiting-second")).to_contain_text("Awaiting second approval")
    expect(first.get_by_role("button", name="Pay all")).to_have_count(0)

    second = chromium.new_context().new_page()
    second.on("dialog", lambda dialog: dialog.accept())
    second.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(second, batch_url, "finance2@example.com")
    second.get_by_role("button", name="Give second approval").click()
    expect(second.locator("h1 .badge")).to_have_text("approved")
    second.get_by_role("button", name="Pay all").click()
    expect(second.get_by_role("status").first).to_contain_text("Sending batch")

    # The app's in-process worker runs payouts.send against the fake Stripe; reload until it has answered.
    row = second.locator("#payouts tbody tr").first
    for _ in range(50):
        if row.locator(".badge").inner_text() == "paid":
            break
        second.wait_for_timeout(200)
        second.reload()
        row = second.locator("#payouts tbody tr").first
    expect(row.locator(".badge")).to_have_text("paid")
    expect(row).to_contain_text("stripe connect")
    expect(row).to_contain_text("tr_0001")
    expect(second.locator("h1 .badge")).to_have_text("paid")
    assert len(world.stripe.transfers) == 1
    (post,) = world.stripe.posts()
    assert post.headers["idempotency-key"].startswith("partnerpay-payout-pay_")

    portal = chromium.new_context().new_page()
    portal.on("pageerror", lambda exc: errors.append(str(exc)))
    log_in(portal, f"{world.base_url}/portal/payouts", "jo@northwind.example")
    payout = portal.locator("section.payout").first
    expect(payout.locator("h2 .badge")).to_have_text("paid")
    expect(payout).to_contain_text("Paid on 15 Jan 2026")
    expect(payout).to_contain_text("€498.00")
    assert errors == []
