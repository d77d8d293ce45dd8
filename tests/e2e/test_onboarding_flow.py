"""Issue 3's journey in a real browser: apply on the public page → staff approves → the partner sets a
password from the welcome email, accepts the terms, adds an IBAN and sees it masked."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from partnerpay.jobs.models import OutboxJob
from partnerpay.kit.clock import FixedClock
from partnerpay.partners.models import Partner, PayoutMethod
from partnerpay.programs.terms import publish_terms
from partnerpay.settings import Settings
from partnerpay.web.app import create_app
from tests import factories
from tests.e2e.conftest import serve

pytestmark = pytest.mark.e2e
PASSWORD = "correct horse battery"
IBAN = "DE89370400440532013000"


def welcome_link(factory: sessionmaker[Session], email: str) -> str:
    """The partner's inbox, as the outbox holds it before the worker sends it."""
    with factory() as s:
        for job in s.scalars(select(OutboxJob).where(OutboxJob.kind == "email.send")):
            if job.payload["to"] == email:
                match = re.search(r"/invite/[A-Za-z0-9_\-]+", job.payload["text"])
                if match:
                    return match.group(0)
    raise AssertionError(f"no welcome email with a link for {email}")


class TestOnboardingJourney:
    def test_apply_approve_set_password_accept_terms_add_iban(
        self, database_url: str, session_factory: sessionmaker[Session], clock: FixedClock, chromium: Any
    ) -> None:
        with session_factory() as s:
            program = factories.program(s, clock.now(), name="Acme Partners", hold_days=30)
            create_staff_user(
                s, actor=SYSTEM, email="manager@example.com", role="owner", password=PASSWORD, now=clock.now()
            )
            publish_terms(
                s,
                actor=SYSTEM,
                program_id=program.id,
                title="Partner terms",
                body_markdown="# Terms\n\nWe pay **20 %** of every paid invoice.",
                now=clock.now(),
            )
            s.commit()
            slug = program.slug
        app = create_app(Settings(database_url=database_url, secret_key="e" * 40, in_process_worker=False), clock=clock)
        server = serve(app)
        base = next(server)
        try:
            page = chromium.new_page()
            # 1. A prospective partner applies on the branded public page.
            page.goto(f"{base}/apply/{slug}")
            page.fill("input[name=name]", "Nora Northwind")
            page.fill("input[name=email]", "nora@northwind.example")
            page.click("button[type=submit]")
            assert "Thank you" in page.content() or "received" in page.content().lower()
            with session_factory() as s:
                partner = s.scalar(select(Partner).where(Partner.email == "nora@northwind.example"))
                assert partner is not None and partner.status == "applied"

            # 2. Staff approve the application in the console.
            staff = chromium.new_page()
            staff.goto(f"{base}/login")
            staff.fill("input[name=email]", "manager@example.com")
            staff.fill("input[name=password]", PASSWORD)
            staff.click("button[type=submit]")
            staff.goto(f"{base}/applications")
            staff.once("dialog", lambda dialog: dialog.accept())
            staff.click("form[action='/applications/approve'] button:has-text('Approve') >> nth=-1")
            staff.wait_for_load_state()
            with session_factory() as s:
                assert s.get(Partner, partner.id).status == "active"  # type: ignore[union-attr]

            # 3. The partner follows the welcome email's link and sets a password.
            page.goto(base + welcome_link(session_factory, "nora@northwind.example"))
            page.fill("input[name=password]", PASSWORD)
            page.fill("input[name=password_confirm]", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_load_state()

            # 4. The current terms must be accepted before earning.
            if "/portal/terms" not in page.url:
                page.goto(f"{base}/portal/terms")
            assert "We pay" in page.content()
            page.click("button:has-text('I accept the terms')")
            page.wait_for_load_state()

            # 5. An IBAN, with the password asked again; it comes back masked, never in clear.
            page.goto(f"{base}/portal/profile/payout-method?type=sepa")
            page.fill("input[name=account_holder]", "Nora Northwind")
            page.fill("input[name=iban]", "DE89 3704 0044 0532 0130 00")
            page.fill("input[name=password]", PASSWORD)
            page.click("button:has-text('Save payout method')")
            page.wait_for_load_state()
            page.goto(f"{base}/portal/profile")
            text = page.content()
            assert "3000" in text and IBAN not in text and "0532 0130 00" not in text
            assert re.search(r"DE89\s*[•*]", text), "masked IBAN shown"
            with session_factory() as s:
                method = s.scalar(
                    select(PayoutMethod).where(PayoutMethod.partner_id == partner.id, PayoutMethod.active.is_(True))
                )
                assert method is not None and method.type == "sepa" and IBAN not in method.details_encrypted
        finally:
            server.close()
