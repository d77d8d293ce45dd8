"""The console partner page's Disputes section (status, kind, opened, SLA, link to the case) and the disputes
CSV export (the queue's filters, formula-escaped cells, staff only)."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

from fastapi.testclient import TestClient

from tests.api.test_disputes_pages import dispute_line, latest, portal, w, world  # noqa: F401  (fixtures)
from tests.api.test_pages import World, csrf_of, staff

HTMX = {"HX-Request": "true"}
FORMULA = '=HYPERLINK("http://evil.example","click")'


def rows_of(response_text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response_text)))


def claim(w: World, who: str = "beta", ref: str = "Beta Corp") -> str:  # noqa: F811
    client = portal(w, who)
    data = {"kind": "missing_commission", "customer_ref": ref, "event_date": "2026-01-10", "description": "x",
            "csrf_token": csrf_of(client, "/portal/disputes/new")}  # fmt: skip
    assert client.post("/portal/disputes", data=data).status_code == 200
    return latest(w).id


def withdraw(w: World, who: str, dispute_id: str) -> None:  # noqa: F811
    client = portal(w, who)
    client.post(f"/portal/disputes/{dispute_id}/withdraw", data={"csrf_token": csrf_of(client, "/portal")})
    assert latest(w).status == "withdrawn"


class TestPartnerSection:
    def test_the_tab_bar_links_the_section_that_loads_the_partners_disputes(self, w: World) -> None:  # noqa: F811
        page = staff(w, "viewer").get(f"/partners/{w.acme_id}").text
        tabs = page.split('<nav class="tabs"', 1)[1].split("</nav>", 1)[0]
        assert '<a href="#disputes">Disputes</a>' in tabs
        assert f'id="disputes" aria-labelledby="disputes-h" hx-get="/partners/{w.acme_id}/disputes"' in page

    def test_the_section_lists_only_this_partners_disputes_with_status_sla_and_link(self, w: World) -> None:  # noqa: F811
        dispute_line(portal(w), w.acme_line)
        mine = latest(w).id
        theirs = claim(w)
        section = staff(w, "viewer").get(f"/partners/{w.acme_id}/disputes", headers=HTMX)
        assert section.status_code == 200 and "<html" not in section.text
        row = section.text.split(f'id="partner-dispute-{mine}"', 1)[1].split("</tr>", 1)[0]
        assert f'href="/disputes/{mine}"' in row and f'wrong amount, line <span class="mono">{w.acme_line}' in row
        assert "badge-open" in row and "due in 10 days" in row and "15 Jan 2026" in row and "25 Jan 2026" in row
        assert theirs not in section.text and "Beta Corp" not in section.text
        assert f'href="/disputes.csv?partner_id={w.acme_id}&amp;status=any"' in section.text

    def test_an_overdue_dispute_says_so_and_a_closed_one_says_when(self, w: World) -> None:  # noqa: F811
        late = claim(w, "acme", "Late Corp")
        closed = claim(w, "acme", "Closed Corp")
        withdraw(w, "acme", closed)
        w.clock.advance(timedelta(days=13))
        section = staff(w, "viewer").get(f"/partners/{w.acme_id}/disputes", headers=HTMX).text
        late_row = section.split(f'id="partner-dispute-{late}"', 1)[1].split("</tr>", 1)[0]
        assert 'class="overdue small nowrap">overdue by 3 days' in late_row
        closed_row = section.split(f'id="partner-dispute-{closed}"', 1)[1].split("</tr>", 1)[0]
        assert "badge-withdrawn" in closed_row and "closed 15 Jan 2026" in closed_row and "overdue" not in closed_row

    def test_without_javascript_it_is_a_page_and_an_unknown_partner_is_404(self, w: World) -> None:  # noqa: F811
        client = staff(w, "viewer")
        assert "has not disputed a line" in client.get(f"/partners/{w.acme_id}/disputes").text
        page = client.get(f"/partners/{w.acme_id}/disputes").text
        assert "<html" in page and f'href="/partners/{w.acme_id}"' in page
        assert client.get("/partners/ptn_nope/disputes").status_code == 404

    def test_a_partner_session_cannot_open_the_console_section(self, w: World) -> None:  # noqa: F811
        dispute_line(portal(w), w.acme_line)
        response = portal(w).get(f"/partners/{w.acme_id}/disputes", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")


class TestExport:
    def export(self, client: TestClient, query: str = "") -> list[dict[str, str]]:
        response = client.get(f"/disputes.csv{query}")
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/csv")
        assert response.headers["content-disposition"].startswith('attachment; filename="disputes-2026')
        return rows_of(response.text)

    def test_waiting_disputes_by_default_any_status_on_request_and_by_partner(self, w: World) -> None:  # noqa: F811
        dispute_line(portal(w), w.acme_line)
        open_one = latest(w).id
        closed = claim(w, "beta")
        withdraw(w, "beta", closed)
        client = staff(w, "viewer")
        assert [r["id"] for r in self.export(client)] == [open_one]
        assert {r["id"] for r in self.export(client, "?status=any")} == {open_one, closed}
        assert [r["id"] for r in self.export(client, "?status=withdrawn")] == [closed]
        assert [r["id"] for r in self.export(client, f"?status=any&partner_id={w.beta_id}")] == [closed]
        (row,) = self.export(client, "?status=open")
        assert (row["partner"], row["kind"], row["status"], row["amount"], row["currency"]) == (
            "Acme Media", "wrong_amount", "open", "300.00", "EUR")  # fmt: skip
        assert (row["sla"], row["overdue"], row["line_id"]) == ("due in 10 days", "no", w.acme_line)

    def test_overdue_filter_and_column(self, w: World) -> None:  # noqa: F811
        late = claim(w, "acme")
        w.clock.advance(timedelta(days=11))
        claim(w, "beta")  # due in 10 days from now
        client = staff(w, "viewer")
        assert 'filename="disputes-20260126.csv"' in client.get("/disputes.csv").headers["content-disposition"]
        (row,) = self.export(client, "?overdue=1")
        assert (row["id"], row["overdue"], row["sla"]) == (late, "yes", "overdue by 1 day")

    def test_what_partners_write_is_formula_escaped(self, w: World) -> None:  # noqa: F811
        dispute_line(portal(w), w.acme_line, description=FORMULA)
        claim(w, "beta", ref="@SUM(A1:A9)")
        text = staff(w, "viewer").get("/disputes.csv").text
        rows = {r["partner"]: r for r in rows_of(text)}
        assert rows["Acme Media"]["description"] == "'" + FORMULA
        assert rows["Beta Blog"]["customer_ref"] == "'@SUM(A1:A9)"

    def test_a_bad_status_is_422_naming_the_statuses(self, w: World) -> None:  # noqa: F811
        response = staff(w, "viewer").get("/disputes.csv?status=lost")
        assert response.status_code == 422 and "status must be one of open, in_review" in response.text

    def test_only_staff_download_it(self, w: World) -> None:  # noqa: F811
        dispute_line(portal(w), w.acme_line)
        response = portal(w, "beta").get("/disputes.csv", follow_redirects=False)
        assert response.status_code == 303 and response.headers["location"].startswith("/login")
        assert w.client().get("/disputes.csv", follow_redirects=False).status_code == 303

    def test_the_queue_links_the_export_with_its_filters(self, w: World) -> None:  # noqa: F811
        client = staff(w, "manager")
        assert 'href="/disputes.csv" download>Download CSV' in client.get("/disputes").text
        page = client.get(f"/disputes?program_id={w.program_id}&status=any&overdue=1").text
        assert f'href="/disputes.csv?program_id={w.program_id}&amp;status=any&amp;overdue=1" download' in page
        assert 'value="any" selected' in page and "All disputes (0)" in page
