"""The console's tracking pages: charts with a title and description, the table of the same figures, top
partners linking to each partner's page, range errors at their field, and the login wall."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_staff_user
from partnerpay.kit.clock import FixedClock
from partnerpay.settings import Settings
from partnerpay.web.app import create_app
from tests import factories
from tests.api.test_pages import PASSWORD, login
from tests.stats_rows import Rows

QUERY = {"from": "2026-01-10", "to": "2026-01-14"}
BY_DAY_ROW = re.compile(r'<tr>\s*<th scope="row" class="nowrap">[^<]+</th>\s*<td class="num">(\d+)</td>')


@dataclass
class Console:
    app: FastAPI
    rows: Rows
    program_id: str
    acme_id: str
    beta_id: str

    def client(self, email: str = "viewer@example.com") -> TestClient:
        return login(TestClient(self.app), email)


@pytest.fixture
def console(database_url: str, session_factory: sessionmaker[Session], clock: FixedClock) -> Iterator[Console]:
    now = clock.now()
    session = session_factory()
    program = factories.program(session, now, name="Tracked program")
    acme = factories.partner(session, program, now, name="Acme Media")
    beta = factories.partner(session, program, now, name="Beta Blog")
    manager = create_staff_user(
        session, actor=SYSTEM, email="pm@example.com", role="manager", password=PASSWORD, now=now
    )
    create_staff_user(session, actor=SYSTEM, email="viewer@example.com", role="viewer", password=PASSWORD, now=now)
    acme.owner_id = manager.id
    rows = Rows(session)
    p, a, b = program.id, acme.id, beta.id
    rows.click(p, a, datetime(2026, 1, 10, 23, 59, 59, tzinfo=UTC), 7)
    rows.click(p, a, datetime(2026, 1, 11, 0, 0, 0, tzinfo=UTC), 2)
    rows.click(p, b, datetime(2026, 1, 12, 9, tzinfo=UTC), 5)
    rows.click(p, None, datetime(2026, 1, 12, 9, tzinfo=UTC), 3)
    rows.event(p, a, "signup", datetime(2026, 1, 11, 8, tzinfo=UTC))
    rows.event(p, b, "signup", datetime(2026, 1, 12, 8, tzinfo=UTC))
    rows.event(p, b, "signup", datetime(2026, 1, 12, 9, tzinfo=UTC))
    rows.lead(p, a, datetime(2026, 1, 13, tzinfo=UTC))
    rows.deal(p, a, "won", datetime(2026, 1, 14, tzinfo=UTC), 125_000, "EUR")
    session.commit()
    session.close()
    app = create_app(Settings(database_url=database_url, secret_key="x" * 40, in_process_worker=False), clock=clock)
    yield Console(app, rows, p, a, b)
    app.state.engine.dispose()


def day_clicks(html: str) -> list[int]:
    """The clicks column of the by-day table, one figure per day row."""
    return [int(n) for n in BY_DAY_ROW.findall(html)]


class TestProgramPage:
    def test_charts_come_with_a_title_a_description_and_the_table_of_figures(self, console: Console):
        response = console.client().get("/tracking", params={"program_id": console.program_id, **QUERY})
        assert response.status_code == 200, response.text
        html = response.text
        assert html.count('role="img"') == 2
        assert '<title id="chart-traffic-title">Clicks and signups by day</title>' in html
        assert '<desc id="chart-pipeline-desc">' in html
        expected = console.rows.expected(console.program_id, date(2026, 1, 10), date(2026, 1, 14))
        assert day_clicks(html) == [f["clicks"] for f in expected["days"].values()]
        total = expected["totals"]
        assert f"Clicks: {total['clicks']} in total" in html  # the chart's text alternative
        assert f"{total['signups']} of {total['clicks']}" in html  # conversion with its counts
        assert "€1,250.00" in html

    def test_top_partners_link_to_their_tracking_page_with_the_same_days(self, console: Console):
        html = console.client().get("/tracking", params={"program_id": console.program_id, **QUERY}).text
        top = html[html.index('id="top-partners"') :]
        assert top.index("Acme Media") < top.index("Beta Blog")  # a won deal ranks first
        assert f'href="/tracking/partners/{console.acme_id}?from=2026-01-10&amp;to=2026-01-14"' in top
        assert "pm@example.com" in top

    def test_the_first_program_is_shown_by_default_over_the_last_30_days(self, console: Console):
        html = console.client().get("/tracking").text
        assert 'name="program_id"' in html and "Tracked program" in html
        assert len(day_clicks(html)) == 30

    @pytest.mark.parametrize(
        ("params", "message"),
        [({"from": "2026-01-14", "to": "2026-01-01"}, "is after to"), ({"to": "2026-02-31"}, "must be a date")],
    )
    def test_a_bad_range_is_shown_at_its_field(self, console: Console, params: dict[str, str], message: str):
        response = console.client().get("/tracking", params=params)
        assert response.status_code == 422
        assert 'aria-invalid="true"' in response.text and message in response.text
        assert 'role="img"' not in response.text

    def test_an_unknown_program_is_404(self, console: Console):
        assert console.client().get("/tracking", params={"program_id": "prg_nope"}).status_code == 404

    def test_without_a_login_the_page_sends_you_to_it(self, console: Console):
        response = TestClient(console.app).get("/tracking", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


class TestPartnerPage:
    def test_one_partners_figures_only(self, console: Console):
        response = console.client().get(f"/tracking/partners/{console.beta_id}", params=QUERY)
        assert response.status_code == 200, response.text
        expected = console.rows.expected(console.program_id, date(2026, 1, 10), date(2026, 1, 14), console.beta_id)
        assert day_clicks(response.text) == [f["clicks"] for f in expected["days"].values()]
        assert "Tracking · Beta Blog" in response.text and 'id="top-partners"' not in response.text
        assert response.text.count('role="img"') == 2

    def test_an_unknown_partner_is_404(self, console: Console):
        assert console.client().get("/tracking/partners/ptn_nope").status_code == 404


class TestNoProgram:
    def test_an_empty_console_explains_what_to_do(self, database_url: str, clock: FixedClock, session_factory):
        with session_factory() as s:
            create_staff_user(
                s, actor=SYSTEM, email="viewer@example.com", role="viewer", password=PASSWORD, now=clock.now()
            )
            s.commit()
        app = create_app(Settings(database_url=database_url, secret_key="x" * 40, in_process_worker=False), clock=clock)
        response = login(TestClient(app), "viewer@example.com").get("/tracking")
        app.state.engine.dispose()
        assert response.status_code == 200 and "No program yet" in response.text
