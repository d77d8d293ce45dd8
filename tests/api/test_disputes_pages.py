"""Dispute pages: the portal's Dispute action and missing-commission claim with evidence (limits shown at the
field), the partner's status and due date, another partner's dispute 404, CSRF, escaping of what partners write,
and the console queue, case page and resolution with an adjustment."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from partnerpay.commissions.models import CommissionLine
from partnerpay.disputes.models import Dispute, DisputeEvidence
from tests.api import test_pages
from tests.api.test_pages import World, csrf_of, login, staff

world = test_pages.world
LIMIT = 2048
XSS = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture
def w(world: World, tmp_path: Path) -> Iterator[World]:
    settings = world.app.state.settings
    world.app.state.settings = settings.model_copy(
        update={"attachments_dir": str(tmp_path / "files"), "attachment_max_bytes": LIMIT}
    )
    yield world


def portal(w: World, who: str = "acme") -> TestClient:
    return login(w.client(), f"portal@{who}.example", portal=True)


def dispute_line(client: TestClient, line_id: str, files: Any = None, **fields: str) -> Any:
    data = {"kind": "wrong_amount", "line_id": line_id, "amount": "300.00", "description": "25 % on Pro",
            "csrf_token": csrf_of(client, f"/portal/disputes/new?line_id={line_id}"), **fields}  # fmt: skip
    return client.post("/portal/disputes", data=data, files=files)


def latest(w: World) -> Dispute:
    with w.factory() as s:
        found = s.scalars(select(Dispute).order_by(Dispute.id.desc())).first()
        assert found is not None
        return found


class TestPortal:
    def test_earnings_offers_dispute_on_each_line_and_a_claim_form(self, w: World) -> None:
        page = portal(w).get("/portal").text
        assert f'href="/portal/disputes/new?line_id={w.acme_line}"' in page and 'id="claim-missing"' in page

    def test_a_partner_disputes_a_line_with_evidence_and_sees_status_and_due_date(self, w: World) -> None:
        client = portal(w)
        files = [("file", ("invoice.pdf", b"%PDF-1.4 test", "application/pdf"))]
        page = dispute_line(client, w.acme_line, files=files)
        assert page.status_code == 200 and "sent. The team answers by the due date" in page.text
        d = latest(w)
        assert (d.amount, d.status, d.partner_id) == (30_000, "open", w.acme_id)
        assert "due in 10 days" in page.text and "invoice.pdf" in page.text
        with w.factory() as s:
            (attachment_id,) = s.scalars(select(DisputeEvidence.attachment_id)).all()
        download = client.get(f"/portal/disputes/{d.id}/evidence/{attachment_id}")
        assert download.content == b"%PDF-1.4 test" and download.headers["x-content-type-options"] == "nosniff"
        assert "attachment;" in download.headers["content-disposition"]
        assert d.id in client.get("/portal/disputes").text

    def test_earnings_shows_a_disputed_lines_status_instead_of_the_dispute_link(self, w: World) -> None:
        client = portal(w)
        dispute_line(client, w.acme_line)
        d = latest(w)
        page = client.get("/portal").text
        assert f'href="/portal/disputes/{d.id}">Disputed: open, due 25 Jan 2026' in page
        assert f"/portal/disputes/new?line_id={w.acme_line}" not in page

    def test_a_missing_commission_claim_names_the_bad_field_and_keeps_the_values(self, w: World) -> None:
        client = portal(w)
        token = csrf_of(client, "/portal/disputes/new")
        data = {"kind": "missing_commission", "customer_ref": "Acme Corp", "event_date": "03/11/2026",
                "description": "not credited", "csrf_token": token}  # fmt: skip
        page = client.post("/portal/disputes", data=data)
        assert page.status_code == 422 and 'id="f-event_date-error"' in page.text
        assert 'value="Acme Corp"' in page.text
        ok = client.post("/portal/disputes", data={**data, "event_date": "2026-01-10", "amount": "140"})
        assert ok.status_code == 200 and latest(w).customer_ref == "Acme Corp" and latest(w).amount == 14_000

    def test_too_large_and_wrong_type_files_are_refused_at_the_field_and_nothing_is_written(self, w: World) -> None:
        client = portal(w)
        big = dispute_line(client, w.acme_line, files=[("file", ("big.txt", b"a" * (LIMIT + 1), "text/plain"))])
        assert big.status_code == 413 and 'id="f-file-error"' in big.text and "2 KB" in big.text
        exe = dispute_line(client, w.acme_line, files=[("file", ("x.exe", b"MZ\x90\x00" * 8, "application/x-msdos"))])
        assert exe.status_code == 422 and "application/pdf" in exe.text
        with w.factory() as s:
            assert s.scalars(select(Dispute)).all() == []

    def test_without_csrf_nothing_is_written(self, w: World) -> None:
        client = portal(w)
        client.get("/portal/disputes/new")
        response = client.post("/portal/disputes", data={"kind": "wrong_amount", "line_id": w.acme_line,
                                                         "amount": "300", "description": "x"})  # fmt: skip
        assert response.status_code == 403
        with w.factory() as s:
            assert s.scalars(select(Dispute)).all() == []

    def test_another_partners_dispute_and_its_files_are_404(self, w: World) -> None:
        dispute_line(portal(w, "beta"), w.beta_line)
        theirs = latest(w)
        client = portal(w)
        assert client.get(f"/portal/disputes/{theirs.id}").status_code == 404
        assert client.get(f"/portal/disputes/{theirs.id}/evidence/file_x").status_code == 404
        assert client.get(f"/portal/disputes/new?line_id={w.beta_line}").status_code == 404
        token = csrf_of(client, "/portal/disputes")
        client.post(f"/portal/disputes/{theirs.id}/withdraw", data={"csrf_token": token})
        assert latest(w).status == "open"

    def test_what_a_partner_writes_is_escaped_on_both_sides(self, w: World) -> None:
        client = portal(w)
        page = dispute_line(client, w.acme_line, description=XSS)
        d = latest(w)
        token = csrf_of(client, f"/portal/disputes/{d.id}")
        thread = client.post(f"/portal/disputes/{d.id}/messages", data={"body": XSS, "csrf_token": token})
        console = staff(w, "manager").get(f"/disputes/{d.id}").text
        for html in (page.text, thread.text, console):
            assert "<script>alert" not in html and "<img src=x" not in html
            assert "&lt;script&gt;alert(" in html

    def test_the_partner_withdraws_while_it_waits(self, w: World) -> None:
        client = portal(w)
        dispute_line(client, w.acme_line)
        d = latest(w)
        page = client.post(f"/portal/disputes/{d.id}/withdraw", data={"csrf_token": csrf_of(client, "/portal")})
        assert "withdrawn" in page.text and latest(w).status == "withdrawn"


class TestConsole:
    def test_the_queue_shows_sla_owner_and_the_case_side_by_side(self, w: World) -> None:
        dispute_line(portal(w), w.acme_line)
        d = latest(w)
        client = staff(w, "manager")
        queue = client.get("/disputes").text
        assert f'id="dispute-{d.id}"' in queue and "due in 10 days" in queue and "nobody yet" in queue
        page = client.get(f"/disputes/{d.id}").text
        assert 'id="case-line"' in page and 'id="case-event"' in page and 'id="case-customer"' in page
        assert "inv_acme" in page and 'value="60.00"' in page  # suggested: expected 300.00 minus paid 240.00

    def test_staff_resolve_with_an_adjustment_and_the_partner_sees_it(self, w: World) -> None:
        dispute_line(portal(w), w.acme_line)
        d = latest(w)
        client = staff(w, "manager")
        token = csrf_of(client, f"/disputes/{d.id}")
        form = {"action": "adjust", "amount": "60.00", "reason": "Pro rate confirmed", "csrf_token": token}
        page = client.post(f"/disputes/{d.id}/resolve", data=form)
        assert "adjustment line" in page.text and "is pending" in page.text
        done = latest(w)
        assert done.status == "resolved_adjusted" and done.adjustment_line_id
        with w.factory() as s:
            line = s.get(CommissionLine, done.adjustment_line_id)
            assert line is not None and line.amount == 6_000
        mine = portal(w).get(f"/portal/disputes/{d.id}").text
        assert "Pro rate confirmed" in mine and done.adjustment_line_id in mine

    def test_a_viewer_cannot_resolve(self, w: World) -> None:
        dispute_line(portal(w), w.acme_line)
        d = latest(w)
        client = staff(w, "viewer")
        token = csrf_of(client, "/disputes")
        page = client.post(f"/disputes/{d.id}/resolve", data={"action": "reject", "reason": "no", "csrf_token": token})
        assert "resolving a dispute needs the " in page.text and latest(w).status == "open"

    def test_staff_open_a_claim_for_a_partner(self, w: World) -> None:
        client = staff(w, "manager")
        token = csrf_of(client, "/disputes/new")
        page = client.post("/disputes/new", data={"partner_id": w.beta_id, "kind": "missing_commission",
                                                  "customer_ref": "cus_inv_acme", "event_date": "2026-01-14",
                                                  "description": "phoned in", "csrf_token": token})  # fmt: skip
        assert page.status_code == 200 and "opened for the partner" in page.text
        assert 'id="match-' in page.text and "another partner, Acme Media" in page.text


class TestHome:
    def test_the_console_home_lists_waiting_disputes_with_age_and_owner(self, w: World) -> None:
        dispute_line(portal(w), w.acme_line)
        home = staff(w, "manager").get("/").text
        assert 'id="queue-disputes"' in home and "1</strong> dispute waiting for an answer" in home
        assert "1 not taken yet" in home
