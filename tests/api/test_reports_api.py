"""Dashboard data through HTTP: program overview, top partners and a partner's series from the rollups,
money per currency, partners kept apart (404), and the weekly report schedule (GET/PUT, errors at the field)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from partnerpay.events.models import Customer
from partnerpay.partners.service import add_partner_user
from partnerpay.reports.rollups import roll_up
from tests.api.conftest import Api
from tests.api.test_pages import PASSWORD, csrf_of, login
from tests.stats_rows import Rows


@dataclass
class Setup:
    program_id: str
    acme_id: str
    beta_id: str
    staff_id: str


def at(day: int, hour: int = 12) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


@pytest.fixture
def setup(api: Api, session_factory: sessionmaker[Session]) -> Setup:
    program = api.program(name="Reports program")
    acme = api.partner(program["id"], "Acme Media")
    beta = api.partner(program["id"], "Beta Blog")
    p, a, b = program["id"], acme["id"], beta["id"]
    with session_factory() as session:
        rows = Rows(session)
        rows.click(p, a, at(10), 4)
        rows.click(p, b, at(13), 9)
        rows.click(p, None, at(12), 1)
        rows.event(p, a, "signup", at(10))
        rows.event(p, a, "invoice_paid", at(12), customer="alpha", amount=4_200, currency="EUR")
        rows.event(p, b, "invoice_paid", at(13), customer="bravo", amount=1_000, currency="EUR")
        rows.event(p, b, "invoice_paid", at(13), customer="bravo", amount=700, currency="USD")
        for customer, day in (("alpha", 12), ("bravo", 13)):  # what the lifecycle records on a first payment
            session.execute(update(Customer).where(Customer.external_id == customer).values(first_paid_at=at(day)))
        add_partner_user(
            session, actor=SYSTEM, partner_id=a, email="me@acme.example", password=PASSWORD, now=api.clock.now()
        )
        staff = create_staff_user(
            session, actor=SYSTEM, email="pm@example.com", role="manager", password=PASSWORD, now=api.clock.now()
        )
        roll_up(session, now=api.clock.now())
        session.commit()
        return Setup(p, a, b, staff.id)


def amounts(items: list[dict[str, Any]]) -> dict[str, int]:
    return {m["currency"]: m["amount"] for m in items}


class TestProgramOverview:
    def test_totals_funnel_and_top_partners_come_from_the_rollups(self, api: Api, setup: Setup) -> None:
        response = api.get(f"/reports/programs/{setup.program_id}/overview", days=30)
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(body["days"]) == 30 and body["to"] == "2026-01-15"
        totals = body["totals"]
        assert totals["clicks"] == 14 and totals["signups"] == 1 and totals["conversions"] == 3
        assert amounts(totals["revenue"]) == {"EUR": 5_200, "USD": 700}  # per currency, never added up
        assert body["funnel"] == {"clicks": 14, "signups": 1, "paid": 2}
        day = next(d for d in body["days"] if d["date"] == "2026-01-13")
        assert day["clicks"] == 9 and amounts(day["revenue"]) == {"EUR": 1_000, "USD": 700}
        # Ranked by revenue in the program currency (EUR): Acme 42.00 before Beta 10.00.
        assert [t["name"] for t in body["top_partners"]] == ["Acme Media", "Beta Blog"]
        assert body["top_partners"][0]["revenue"] == {"amount": 4_200, "currency": "EUR"}

    def test_top_partners_takes_a_limit(self, api: Api, setup: Setup) -> None:
        body = api.get(f"/reports/programs/{setup.program_id}/top-partners", limit=1).json()
        assert [t["partner_id"] for t in body["data"]] == [setup.acme_id]
        assert api.get(f"/reports/programs/{setup.program_id}/top-partners", limit=501).status_code == 422

    @pytest.mark.parametrize("days", [0, 367])
    def test_days_out_of_range_is_422_naming_the_field(self, api: Api, setup: Setup, days: int) -> None:
        response = api.get(f"/reports/programs/{setup.program_id}/overview", days=days)
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "days"

    def test_another_programs_key_gets_404(
        self, api: Api, setup: Setup, session_factory: sessionmaker[Session]
    ) -> None:
        other = api.program(name="Other")
        key = api.key_for(session_factory, program_id=other["id"], scopes=["read"])
        assert api.get(f"/reports/programs/{setup.program_id}/overview", key=key).status_code == 404
        assert api.get(f"/reports/partners/{setup.acme_id}/series", key=key).status_code == 404


class TestPartnerSeries:
    def test_a_partners_series_and_balance(self, api: Api, setup: Setup) -> None:
        body = api.get(f"/reports/partners/{setup.beta_id}/series", days=7).json()
        assert body["days"][0]["date"] == "2026-01-09" and len(body["days"]) == 7
        assert body["totals"]["clicks"] == 9
        assert amounts(body["totals"]["revenue"]) == {"EUR": 1_000, "USD": 700}
        assert body["balance"]["currency"] == "EUR"

    def test_a_logged_in_partner_reads_its_own_series_and_nobody_elses(self, api: Api, setup: Setup) -> None:
        client = login(api.client, "me@acme.example", portal=True)
        own = client.get(f"/api/v1/reports/partners/{setup.acme_id}/series")
        assert own.status_code == 200 and own.json()["totals"]["clicks"] == 4
        assert client.get(f"/api/v1/reports/partners/{setup.beta_id}/series").status_code == 404
        assert client.get(f"/api/v1/reports/programs/{setup.program_id}/overview").status_code == 404
        assert client.get(f"/api/v1/reports/programs/{setup.program_id}/top-partners").status_code == 404

    def test_no_credentials_is_401(self, api: Api, setup: Setup) -> None:
        assert api.client.get(f"/api/v1/reports/partners/{setup.acme_id}/series").status_code == 401


class TestReportSchedule:
    def test_put_then_get(self, api: Api, setup: Setup) -> None:
        path = f"/programs/{setup.program_id}/report-schedule"
        assert api.get(path).json()["configured"] is False
        body = {"weekday": "friday", "hour": 9, "minute": 30, "timezone": "Europe/Berlin",
                "staff_ids": [setup.staff_id], "send_to_partners": True}  # fmt: skip
        response = api.client.put(f"/api/v1{path}", json=body, headers=api.headers())
        assert response.status_code == 200, response.text
        got = api.get(path).json()
        assert got["configured"] and got["weekday"] == 4 and got["weekday_name"] == "friday"
        assert got["timezone"] == "Europe/Berlin" and got["staff_ids"] == [setup.staff_id]

    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"timezone": "Mars/Olympus"}, "timezone"),
            ({"hour": 24}, "hour"),
            ({"weekday": "someday"}, "weekday"),
            ({"staff_ids": ["usr_nobody"]}, "staff_ids"),
        ],
    )
    def test_bad_input_names_the_field_and_writes_nothing(
        self, api: Api, setup: Setup, body: dict[str, Any], field: str
    ) -> None:
        path = f"/api/v1/programs/{setup.program_id}/report-schedule"
        response = api.client.put(path, json=body, headers=api.headers())
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == field
        assert api.client.get(path, headers=api.headers()).json()["configured"] is False


class TestPages:
    def test_the_console_overview_and_its_live_fragment(self, api: Api, setup: Setup) -> None:
        client = login(api.client, "pm@example.com")
        page = client.get(f"/reports/programs/{setup.program_id}")
        assert page.status_code == 200
        assert "Top partners" in page.text and "Acme Media" in page.text and 'hx-trigger="every 30s"' in page.text
        assert "/static/uplot.min.js" in page.text and "<svg" in page.text  # the script chart and its fallback
        live = client.get(f"/reports/programs/{setup.program_id}", headers={"HX-Request": "true"})
        assert live.status_code == 200 and "<html" not in live.text and 'id="report-live"' in live.text
        assert client.get("/reports").status_code == 200
        assert client.get("/static/uplot.min.js").text.startswith("/*! uPlot v1.6.32")

    def test_the_weekly_preview_and_the_schedule_form(self, api: Api, setup: Setup) -> None:
        client = login(api.client, "pm@example.com")
        preview = client.get(f"/reports/programs/{setup.program_id}/weekly")
        assert (
            preview.status_code == 200
            and "<iframe" in preview.text
            and "Weekly report: Reports program" in preview.text
        )
        path = f"/reports/programs/{setup.program_id}/schedule"
        token = csrf_of(client, path)
        form = {"csrf_token": token, "enabled": "true", "weekday": "tuesday", "hour": "7", "minute": "15",
                "timezone": "Europe/Paris", "staff_ids": setup.staff_id}  # fmt: skip
        saved = client.post(path, data=form)
        assert saved.status_code == 200 and "Weekly report on: Tuesdays at 07:15 Europe/Paris" in saved.text
        bad = client.post(path, data={**form, "timezone": "<b>Nowhere</b>"})
        assert bad.status_code == 422 and "&lt;b&gt;Nowhere&lt;/b&gt;" in bad.text and "<b>Nowhere" not in bad.text
        assert client.post(path, data={**form, "csrf_token": "wrong"}).status_code in (400, 403)

    def test_a_partner_sees_its_own_earnings_and_no_console_report(self, api: Api, setup: Setup) -> None:
        client = login(api.client, "me@acme.example", portal=True)
        page = client.get("/portal/earnings")
        assert page.status_code == 200 and "Earnings over time" in page.text
        assert f"/api/v1/reports/partners/{setup.acme_id}/series" in page.text
        assert setup.beta_id not in page.text
        assert 'hx-get="/portal/earnings"' in client.get("/portal").text
        console = client.get(f"/reports/programs/{setup.program_id}", follow_redirects=False)
        assert console.status_code in (303, 401, 403, 404)
