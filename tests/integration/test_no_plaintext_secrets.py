"""The proof: no bank number, tax id or password appears in clear in the database, the logs or any response.

Partners get an IBAN, a US bank account, a TIN, a VAT id and passwords through the API and the
portal (bad attempts included), the outbox jobs run, and then every value of every column of every
table, every log line and every response body is searched for the clear values.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay import logs
from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_api_key, create_staff_user
from partnerpay.db.models import Base
from partnerpay.jobs.handlers import build_registry
from partnerpay.jobs.worker import Worker
from partnerpay.kit.clock import FixedClock
from partnerpay.partners.models import PayoutMethod, TaxProfile
from partnerpay.partners.service import add_partner_user
from partnerpay.settings import Settings
from partnerpay.web.app import create_app
from tests.api.test_pages import csrf_of

SECRET_KEY = "p" * 40
# A German IBAN that appears in no example or hint anywhere in partnerpay.
API_IBAN = "DE02500105170137075030"
PORTAL_IBAN = "DE27100777770209299700"
ROUTING = "111000025"  # a routing number names a bank, not an account: shown in clear by design
ACCOUNT_NUMBER = "004455667788"
SSN = "536-90-4399"
EIN = "04-2103594"
VAT_ID = "DE136695976"
FOREIGN_TIN = "47/123/45678"
PORTAL_PASSWORD = "portal-Pw-7xq!zz-unique"
STAFF_PASSWORD = "staff-Pw-3lm#yy-unique"

CLEAR = {
    "API IBAN": API_IBAN,
    "portal IBAN": PORTAL_IBAN,
    "account number": ACCOUNT_NUMBER,
    "routing + account": ROUTING + ACCOUNT_NUMBER,
    "SSN digits": SSN.replace("-", ""),
    "SSN as typed": SSN,
    "EIN digits": EIN.replace("-", ""),
    "EIN as typed": EIN,
    "VAT id": VAT_ID,
    "foreign TIN": FOREIGN_TIN,
    "portal password": PORTAL_PASSWORD,
    "staff password": STAFF_PASSWORD,
}


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """JSON logs to the captured stdout, as `partnerpay serve --log-json` writes them."""
    logs.configure(json=True)
    # Module loggers cache the stdout of their first use; fresh ones write to this test's capture.
    for name, module in list(sys.modules.items()):
        if name.startswith("partnerpay") and hasattr(module, "log"):
            monkeypatch.setattr(module, "log", structlog.get_logger(name))
    yield
    structlog.reset_defaults()


class Recorder:
    """Every response body the test received."""

    def __init__(self) -> None:
        self.bodies: list[str] = []

    def __call__(self, response: Any) -> Any:
        self.bodies.append(response.text)
        return response


def dump_database(factory: sessionmaker[Session]) -> str:
    """str() of every value of every column of every table."""
    parts: list[str] = []
    with factory() as s:
        for table in Base.metadata.sorted_tables:
            for row in s.execute(select(table)).all():
                parts.extend(str(value) for value in row)
    return "\n".join(parts)


def found(text: str) -> list[str]:
    return [name for name, value in CLEAR.items() if value in text]


def seed(factory: sessionmaker[Session], clock: FixedClock) -> str:
    with factory() as s:
        _, key = create_api_key(s, actor=SYSTEM, now=clock.now())
        create_staff_user(
            s, actor=SYSTEM, email="finance@example.com", role="finance", password=STAFF_PASSWORD, now=clock.now()
        )
        s.commit()
    return key


def through_the_api(client: TestClient, key: str, keep: Recorder) -> str:
    """Staff set details for two partners with an API key, bad attempts first; returns a partner id."""
    auth = {"Authorization": f"Bearer {key}"}

    def call(method: str, path: str, body: Any = None, **headers: str) -> Any:
        return keep(client.request(method, f"/api/v1{path}", json=body, headers={**auth, **headers}))

    program = call("POST", "/programs", {"name": "Secrets", "currency": "EUR", "hold_days": 0}).json()
    ids = []
    for name in ("Sepa Partner", "Ach Partner"):
        body = {"program_id": program["id"], "name": name, "email": f"{name.split()[0].lower()}@example.com"}
        ids.append(call("POST", "/partners", body).json()["id"])
    sepa, ach = str(ids[0]), str(ids[1])
    bad = [
        ("payout-method", sepa, {"type": "sepa", "iban": API_IBAN}),  # holder missing
        ("payout-method", sepa, {"type": "sepa", "iban": API_IBAN[:-1] + "1", "account_holder": "X"}),
        (
            "payout-method",
            ach,
            {
                "type": "ach",
                "routing_number": "111000026",
                "account_number": ACCOUNT_NUMBER,
                "account_type": "checking",
                "account_holder": "A",
            },
        ),
        (
            "payout-method",
            ach,
            {
                "type": "ach",
                "routing_number": ROUTING,
                "account_number": ACCOUNT_NUMBER,
                "account_type": "gold",
                "account_holder": "A",
            },
        ),
        ("tax-profile", sepa, {"form": "w9", "tin": SSN, "legal_name": "Jane"}),  # address missing
        ("tax-profile", ach, {"form": "w8ben", "country": "US", "legal_name": "A", "foreign_tin": FOREIGN_TIN}),
        ("tax-profile", ach, {"form": "w8ben", "country": "DE", "legal_name": "A", "vat_id": VAT_ID[:-1] + "7"}),
    ]
    for what, partner_id, body in bad:
        assert call("PUT", f"/partners/{partner_id}/{what}", body).status_code == 422
    good = [
        ("payout-method", sepa, {"type": "sepa", "iban": API_IBAN, "account_holder": "Sepa Partner GmbH"}),
        (
            "payout-method",
            ach,
            {
                "type": "ach",
                "routing_number": ROUTING,
                "account_number": ACCOUNT_NUMBER,
                "account_type": "checking",
                "account_holder": "Ach Partner LLC",
            },
        ),
        (
            "tax-profile",
            sepa,
            {
                "form": "w8ben",
                "country": "DE",
                "legal_name": "Sepa Partner GmbH",
                "foreign_tin": FOREIGN_TIN,
                "vat_id": VAT_ID,
            },
        ),
        ("tax-profile", ach, {"form": "w9", "tin": EIN, "legal_name": "Ach Partner LLC", "address": "1 Main St"}),
    ]
    for what, partner_id, body in good:
        response = call("PUT", f"/partners/{partner_id}/{what}", body, **{"Idempotency-Key": f"{what}-{partner_id}"})
        assert response.status_code == 200, response.text
        assert (
            call("PUT", f"/partners/{partner_id}/{what}", body, **{"Idempotency-Key": f"{what}-{partner_id}"}).json()
            == response.json()
        )
        assert call("GET", f"/partners/{partner_id}/{what}").status_code == 200
    call("GET", f"/partners/{sepa}")
    return sepa


def through_the_portal(
    client: TestClient, partner_id: str, factory: sessionmaker[Session], clock: FixedClock, keep: Recorder
) -> None:
    """The partner logs in and changes its details, once with a wrong password."""
    with factory() as s:
        add_partner_user(
            s,
            actor=SYSTEM,
            partner_id=partner_id,
            email="owner@sepa.example",
            password=PORTAL_PASSWORD,
            now=clock.now(),
        )
        s.commit()
    token = csrf_of(client, "/portal/login")
    keep(
        client.post(
            "/portal/login", data={"email": "owner@sepa.example", "password": PORTAL_PASSWORD, "csrf_token": token}
        )
    )
    payout = {"type": "sepa", "iban": PORTAL_IBAN, "bic": "", "account_holder": "Sepa Partner GmbH"}
    tax = {"form": "w9", "tin": SSN, "legal_name": "Jane Doe", "address": "2 Elm St", "vat_id": VAT_ID}
    for path, form in [("/portal/profile/payout-method", payout), ("/portal/profile/tax-form", tax)]:
        for password, status in [("wrong-" + PORTAL_PASSWORD[::-1], 422), (PORTAL_PASSWORD, 200)]:
            token = csrf_of(client, path)
            response = keep(client.post(path, data={**form, "password": password, "csrf_token": token}))
            assert response.status_code == status, response.text
    keep(client.get("/portal/profile"))
    keep(client.get("/portal"))


def through_the_console(client: TestClient, keep: Recorder) -> None:
    token = csrf_of(client, "/login")
    response = keep(
        client.post("/login", data={"email": "finance@example.com", "password": STAFF_PASSWORD, "csrf_token": token})
    )
    assert response.status_code == 200


class TestNoPlainTextSecrets:
    def test_no_clear_secret_is_in_the_database_the_logs_or_any_response(
        self,
        database_url: str,
        session_factory: sessionmaker[Session],
        clock: FixedClock,
        json_logs: None,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        settings = Settings(database_url=database_url, secret_key=SECRET_KEY, in_process_worker=False)
        app = create_app(settings, clock=clock)
        keep = Recorder()
        key = seed(session_factory, clock)
        with TestClient(app) as api, TestClient(app) as portal, TestClient(app) as console:
            partner_id = through_the_api(api, key, keep)
            through_the_portal(portal, partner_id, session_factory, clock, keep)
            through_the_console(console, keep)
        ran = Worker(session_factory, build_registry(), clock=clock).run_pending()
        app.state.engine.dispose()

        # The details are there, but only encrypted: the box opens them to the clear values.
        box = settings.secret_box()
        with session_factory() as s:
            sealed = [
                *s.scalars(select(PayoutMethod.details_encrypted)),
                *s.scalars(select(TaxProfile.details_encrypted)),
            ]
        opened = " ".join(str(box.decrypt(token)) for token in sealed)
        assert all(value in opened for value in (API_IBAN, PORTAL_IBAN, ACCOUNT_NUMBER, "536904399", VAT_ID))

        database = dump_database(session_factory)
        output = capsys.readouterr()
        log_text = output.out + output.err
        assert ran >= 4 and "email not sent" in log_text  # the payout-change emails went to the (JSON) log
        assert len(keep.bodies) > 30
        assert found(database) == [], "clear secrets in the database"
        assert found(log_text) == [], "clear secrets in the logs"
        assert [(n, found(body)) for n, body in enumerate(keep.bodies) if found(body)] == [], (
            "clear secrets in responses"
        )
