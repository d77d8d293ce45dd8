"""The batch page: Pay all (CSRF, confirmation), per-payout rail and status, stored files to download."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from partnerpay.kit.clock import FixedClock
from partnerpay.kit.crypto import SecretBox
from partnerpay.settings import Settings
from partnerpay.web.app import create_app
from tests.api.test_pages import CSRF, PASSWORD, login
from tests.integration.payout_rail_fakes import FakeStripe, serving
from tests.integration.sending_helpers import approved_batch, drain, worker

KEY = "x" * 40


@pytest.fixture
def app_client(database_url: str, session_factory: sessionmaker[Session], clock: FixedClock) -> Iterator[TestClient]:
    with session_factory() as s:
        for role in ("finance", "manager"):
            create_staff_user(
                s, actor=SYSTEM, email=f"{role}@example.com", role=role, password=PASSWORD, now=clock.now()
            )
        s.commit()
    app = create_app(Settings(database_url=database_url, secret_key=KEY, in_process_worker=False), clock=clock)
    yield TestClient(app)
    app.state.engine.dispose()


class TestPayAllPage:
    def test_finance_presses_pay_all_and_sees_each_payouts_rail_and_status(
        self, app_client: TestClient, session: Session, session_factory: sessionmaker[Session], clock: FixedClock
    ) -> None:
        setup = approved_batch(session, clock, ["sepa", "stripe"], box=SecretBox(KEY))
        client = login(app_client, "finance@example.com")
        page = client.get(f"/payouts/batches/{setup.batch_id}")
        assert 'id="pay-all"' in page.text and "Pay all: send 2 payouts" in page.text
        token = CSRF.search(page.text)
        assert token
        refused = client.post(f"/payouts/batches/{setup.batch_id}/send", data={})
        assert refused.status_code in (400, 403)
        sent = client.post(f"/payouts/batches/{setup.batch_id}/send", data={"csrf_token": token.group(1)})
        assert sent.status_code == 200 and "Sending batch" in sent.text
        assert (
            "<td>stripe connect</td>" in sent.text and '<span class="badge badge-sending">sending</span>' in sent.text
        )
        with serving(FakeStripe()) as fake:
            drain(session, worker(session_factory, clock, stripe_url=fake.url, box=SecretBox(KEY)))
        after = client.get(f"/payouts/batches/{setup.batch_id}").text
        assert fake.transfers[0]["id"] in after  # the Stripe transfer id shown as the provider reference
        # Stripe paid at once; the SEPA payout is in the file given to the bank (sent).
        assert '<h1>Payout batch <span class="badge badge-sent">sent</span></h1>' in after
        assert '<span class="badge badge-paid">paid</span>' in after  # the Stripe payout
        assert '<span class="badge badge-sent">sent</span>' in after
        assert f"/payouts/batches/{setup.batch_id}/files/sepa" in after
        download = client.get(f"/payouts/batches/{setup.batch_id}/files/sepa")
        assert download.status_code == 200 and "<CtrlSum>20.00</CtrlSum>" in download.text

    def test_a_manager_cannot_pay_all(self, app_client: TestClient, session: Session, clock: FixedClock) -> None:
        setup = approved_batch(session, clock, ["sepa"], box=SecretBox(KEY))
        client = login(app_client, "manager@example.com")
        page = client.get(f"/payouts/batches/{setup.batch_id}")
        token = CSRF.search(page.text)
        assert token
        response = client.post(f"/payouts/batches/{setup.batch_id}/send", data={"csrf_token": token.group(1)})
        assert response.status_code == 403 and "finance or owner role" in response.text
