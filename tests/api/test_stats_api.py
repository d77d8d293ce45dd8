"""GET /programs/{id}/stats and /partners/{id}/stats through HTTP: figures from the inserted rows, the
default range, range errors at their field, and partners kept apart (404)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.partners.service import add_partner_user
from tests.api.conftest import Api
from tests.api.test_pages import PASSWORD, login
from tests.stats_rows import Rows

START, END = "2026-01-10", "2026-01-14"


@dataclass
class Setup:
    rows: Rows
    program_id: str
    acme_id: str
    beta_id: str


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 1, day, hour, minute, second, tzinfo=UTC)


@pytest.fixture
def setup(api: Api, session_factory: sessionmaker[Session]) -> Setup:
    program = api.program(name="Stats program")
    acme = api.partner(program["id"], "Acme Media")
    beta = api.partner(program["id"], "Beta Blog")
    session = session_factory()
    rows = Rows(session)
    p, a, b = program["id"], acme["id"], beta["id"]
    rows.click(p, a, at(10, 23, 59, 59), 4)
    rows.click(p, a, at(11, 0, 0, 0), 2)
    rows.click(p, b, at(13), 3)
    rows.click(p, None, at(12), 1)
    rows.event(p, a, "signup", at(10, 23, 59, 59))
    rows.event(p, a, "signup", at(11, 0, 0, 0))
    rows.event(p, b, "signup", at(13))
    rows.event(p, a, "invoice_paid", at(12), customer="alpha", amount=4_200, currency="EUR")
    rows.lead(p, a, at(10))
    rows.lead(p, a, at(11))
    rows.lead(p, b, at(14))
    rows.deal(p, a, "won", at(12), 30_000, "EUR")
    rows.deal(p, b, "lost", None)
    add_partner_user(
        session, actor=SYSTEM, partner_id=a, email="me@acme.example", password=PASSWORD, now=api.clock.now()
    )
    session.commit()
    session.close()
    return Setup(rows, p, a, b)


def as_expected(day: dict[str, Any]) -> dict[str, Any]:
    """An API day (or totals) in the shape Rows.expected uses."""
    keys = ("clicks", "attributed_clicks", "signups", "leads", "deals_won")
    money = {k: {m["currency"]: m["amount"] for m in day[k]} for k in ("won", "revenue")}
    return {k: day[k] for k in keys} | money | {"paying": day["paying_customers"]}


def rate(numerator: int, denominator: int) -> dict[str, Any]:
    """The documented rounding, worked out independently with exact fractions."""
    from fractions import Fraction

    bp = round(Fraction(numerator * 10_000, denominator))  # round() on a Fraction is half-even
    tenths = round(Fraction(numerator * 1_000, denominator))
    return {"numerator": numerator, "denominator": denominator, "basis_points": bp, "percent": f"{tenths / 10:.1f} %"}


class TestProgramStats:
    def test_figures_by_day_and_totals_come_from_the_rows(self, api: Api, setup: Setup):
        response = api.get(f"/programs/{setup.program_id}/stats", **{"from": START, "to": END})
        assert response.status_code == 200, response.text
        body = response.json()
        expected = setup.rows.expected(setup.program_id, date(2026, 1, 10), date(2026, 1, 14))
        assert (body["from"], body["to"], body["partner_id"]) == (START, END, None)
        assert {date.fromisoformat(d["date"]): as_expected(d) for d in body["days"]} == expected["days"]
        assert as_expected(body["totals"]) == expected["totals"]
        totals = expected["totals"]
        assert body["conversion"]["signups_per_click"] == rate(totals["signups"], totals["clicks"])
        assert body["conversion"]["won_deals_per_lead"] == rate(totals["deals_won"], totals["leads"])
        assert [t["partner_id"] for t in body["top_partners"]] == [setup.acme_id, setup.beta_id]

    def test_without_dates_the_last_30_days_ending_today(self, api: Api, setup: Setup):
        body = api.get(f"/programs/{setup.program_id}/stats").json()
        today = api.clock.now().date()
        assert (body["from"], body["to"]) == ((today - timedelta(days=29)).isoformat(), today.isoformat())
        assert len(body["days"]) == 30 and body["days"][-1]["date"] == today.isoformat()

    @pytest.mark.parametrize(
        ("params", "field"),
        [
            ({"from": "2026-02-30"}, "from"),
            ({"to": "15/01/2026"}, "to"),
            ({"from": "2026-01-14", "to": "2026-01-10"}, "from"),
            ({"from": "2025-01-01", "to": "2026-01-14"}, "to"),
        ],
    )
    def test_a_bad_range_is_422_naming_the_field(self, api: Api, setup: Setup, params: dict[str, str], field: str):
        response = api.get(f"/programs/{setup.program_id}/stats", **params)
        assert response.status_code == 422
        assert response.json()["error"]["code"] == "validation_error"
        assert response.json()["error"]["field"] == field

    def test_another_programs_key_gets_404(self, api: Api, setup: Setup, session_factory: sessionmaker[Session]):
        other = api.program(name="Other program")
        key = api.key_for(session_factory, program_id=other["id"], scopes=["read"])
        assert api.get(f"/programs/{setup.program_id}/stats", key=key).status_code == 404
        assert api.get(f"/partners/{setup.acme_id}/stats", key=key).status_code == 404
        assert api.get(f"/programs/{other['id']}/stats", key=key).status_code == 200

    def test_no_credentials_is_401(self, api: Api, setup: Setup):
        assert api.client.get(f"/api/v1/programs/{setup.program_id}/stats").status_code == 401


class TestPartnerStats:
    def test_one_partners_figures(self, api: Api, setup: Setup):
        response = api.get(f"/partners/{setup.beta_id}/stats", **{"from": START, "to": END})
        assert response.status_code == 200, response.text
        body = response.json()
        expected = setup.rows.expected(setup.program_id, date(2026, 1, 10), date(2026, 1, 14), setup.beta_id)
        assert {date.fromisoformat(d["date"]): as_expected(d) for d in body["days"]} == expected["days"]
        assert (body["partner_id"], body["top_partners"]) == (setup.beta_id, [])

    def test_a_logged_in_partner_reads_its_own_figures_and_nobody_elses(self, api: Api, setup: Setup):
        client = login(api.client, "me@acme.example", portal=True)
        own = client.get(f"/api/v1/partners/{setup.acme_id}/stats", params={"from": START, "to": END})
        assert own.status_code == 200, own.text
        expected = setup.rows.expected(setup.program_id, date(2026, 1, 10), date(2026, 1, 14), setup.acme_id)
        assert as_expected(own.json()["totals"]) == expected["totals"]
        assert client.get(f"/api/v1/partners/{setup.beta_id}/stats").status_code == 404
        assert client.get(f"/api/v1/programs/{setup.program_id}/stats").status_code == 404

    def test_an_unknown_partner_is_404(self, api: Api, setup: Setup):
        assert api.get("/partners/ptn_nobody/stats").status_code == 404
