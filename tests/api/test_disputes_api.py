"""Disputes over HTTP: open (key, staff, partner session with CSRF), list with filters and cursor paging, show,
resolve by adjustment or rejection, evidence upload with its limits, and one partner never seeing another's."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from partnerpay.auth.actor import SYSTEM
from partnerpay.auth.service import create_api_key
from partnerpay.commissions.models import CommissionLine
from tests.api import test_pages
from tests.api.test_pages import World, csrf_of, login

world = test_pages.world
LIMIT = 2048
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def w(world: World, tmp_path: Path) -> Iterator[World]:
    """The pages world with evidence stored under tmp_path and a small file limit (2 KB)."""
    settings = world.app.state.settings
    world.app.state.settings = settings.model_copy(
        update={"attachments_dir": str(tmp_path / "files"), "attachment_max_bytes": LIMIT}
    )
    yield world


@pytest.fixture
def key(w: World) -> str:
    with w.factory() as s:
        _, secret = create_api_key(s, actor=SYSTEM, now=w.clock.now(), scopes=["read", "write", "approve"])
        s.commit()
    return secret


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def portal(w: World, who: str = "acme") -> tuple[TestClient, dict[str, str]]:
    client = login(w.client(), f"portal@{who}.example", portal=True)
    return client, {"X-CSRF-Token": csrf_of(client, "/portal/leads")}


def wrong_amount(w: World, **kw: Any) -> dict[str, Any]:
    return {"kind": "wrong_amount", "line_id": w.acme_line, "amount": 30_000, "description": "25 % on Pro", **kw}


class TestOpen:
    def test_a_partner_opens_its_own_with_csrf_and_sees_status_and_due_date(self, w: World) -> None:
        client, csrf = portal(w)
        assert client.post("/api/v1/disputes", json=wrong_amount(w)).status_code == 403  # no CSRF header
        response = client.post("/api/v1/disputes", json=wrong_amount(w), headers=csrf)
        assert response.status_code == 201, response.text
        body = response.json()
        assert body["id"].startswith("dsp_") and body["partner_id"] == w.acme_id
        assert (body["status"], body["overdue"], body["sla"], body["evidence"]) == ("open", False, "due in 10 days", [])
        assert body["due_at"].startswith((w.clock.now() + timedelta(days=10)).date().isoformat())

    def test_a_partner_cannot_dispute_another_partners_line(self, w: World) -> None:
        client, csrf = portal(w)
        response = client.post("/api/v1/disputes", json=wrong_amount(w, line_id=w.beta_line), headers=csrf)
        assert response.status_code == 404 and response.json()["error"]["field"] == "line_id"

    def test_a_float_amount_is_refused_naming_the_field(self, w: World, key: str) -> None:
        response = w.client().post("/api/v1/disputes", json=wrong_amount(w, amount=300.5), headers=bearer(key))
        assert response.status_code == 422 and response.json()["error"]["field"] == "amount"

    def test_a_key_opens_a_missing_commission_claim_for_a_partner(self, w: World, key: str) -> None:
        when = (w.clock.now() - timedelta(days=2)).isoformat()
        body = {"kind": "missing_commission", "partner_id": w.beta_id, "customer_ref": "Acme Corp",
                "event_date": when, "description": "not credited"}  # fmt: skip
        response = w.client().post("/api/v1/disputes", json=body, headers=bearer(key))
        assert response.status_code == 201, response.text
        assert (response.json()["partner_id"], response.json()["line_id"]) == (w.beta_id, None)

    def test_the_same_idempotency_key_replays_the_first_dispute(self, w: World, key: str) -> None:
        headers = {**bearer(key), "Idempotency-Key": "d-1"}
        first = w.client().post("/api/v1/disputes", json=wrong_amount(w), headers=headers)
        again = w.client().post("/api/v1/disputes", json=wrong_amount(w), headers=headers)
        assert again.headers["idempotent-replayed"] == "true" and again.json()["id"] == first.json()["id"]
        other = w.client().post("/api/v1/disputes", json=wrong_amount(w, amount=1), headers=headers)
        assert other.status_code == 409


class TestReadAndList:
    def test_partners_see_only_theirs_and_anothers_is_404(self, w: World, key: str) -> None:
        acme, acme_csrf = portal(w)
        beta, beta_csrf = portal(w, "beta")
        mine = acme.post("/api/v1/disputes", json=wrong_amount(w), headers=acme_csrf).json()
        theirs = beta.post("/api/v1/disputes", json=wrong_amount(w, line_id=w.beta_line), headers=beta_csrf).json()
        assert acme.get(f"/api/v1/disputes/{theirs['id']}").status_code == 404
        assert [d["id"] for d in acme.get("/api/v1/disputes").json()["data"]] == [mine["id"]]
        assert acme.post(f"/api/v1/disputes/{theirs['id']}/withdraw", headers=acme_csrf).status_code == 404
        everyone = w.client().get("/api/v1/disputes", headers=bearer(key)).json()["data"]
        assert {d["id"] for d in everyone} == {mine["id"], theirs["id"]}

    def test_filters_and_cursor_paging(self, w: World, key: str) -> None:
        client = w.client()
        a = client.post("/api/v1/disputes", json=wrong_amount(w), headers=bearer(key)).json()
        b = client.post("/api/v1/disputes", json=wrong_amount(w, line_id=w.beta_line), headers=bearer(key)).json()
        client.post(f"/api/v1/disputes/{b['id']}/review", headers=bearer(key))
        page = client.get("/api/v1/disputes", params={"limit": 1}, headers=bearer(key)).json()
        assert [d["id"] for d in page["data"]] == [a["id"]] and page["next_cursor"]
        rest = client.get("/api/v1/disputes", params={"limit": 1, "cursor": page["next_cursor"]}, headers=bearer(key))
        assert [d["id"] for d in rest.json()["data"]] == [b["id"]] and rest.json()["next_cursor"] is None
        by_status = client.get("/api/v1/disputes", params={"status": "in_review"}, headers=bearer(key)).json()
        assert [d["id"] for d in by_status["data"]] == [b["id"]]
        by_partner = client.get("/api/v1/disputes", params={"partner_id": w.acme_id}, headers=bearer(key)).json()
        assert [d["id"] for d in by_partner["data"]] == [a["id"]]
        assert client.get("/api/v1/disputes", params={"overdue": "true"}, headers=bearer(key)).json()["data"] == []
        w.clock.advance(timedelta(days=11))
        late = client.get("/api/v1/disputes", params={"overdue": "true"}, headers=bearer(key)).json()["data"]
        assert {d["id"] for d in late} == {a["id"], b["id"]} and all(d["overdue"] for d in late)
        bad = client.get("/api/v1/disputes", params={"status": "angry"}, headers=bearer(key))
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "status"


class TestResolve:
    def test_adjust_links_a_pending_adjustment_line_and_a_second_resolve_is_409(self, w: World, key: str) -> None:
        client = w.client()
        d = client.post("/api/v1/disputes", json=wrong_amount(w), headers=bearer(key)).json()
        done = client.post(f"/api/v1/disputes/{d['id']}/resolve", json={"action": "adjust", "reason": "Pro rate"},
                           headers=bearer(key))  # fmt: skip
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "resolved_adjusted" and done.json()["sla"] == ""
        with w.factory() as s:
            line = s.get(CommissionLine, done.json()["adjustment_line_id"])
            assert line is not None and (line.amount, line.status) == (30_000 - 24_000, "pending")
        again = client.post(f"/api/v1/disputes/{d['id']}/resolve", json={"action": "reject", "reason": "x"},
                            headers=bearer(key))  # fmt: skip
        assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"

    def test_reject_needs_a_reason_and_a_partner_cannot_resolve(self, w: World, key: str) -> None:
        client, csrf = portal(w)
        d = client.post("/api/v1/disputes", json=wrong_amount(w), headers=csrf).json()
        path = f"/api/v1/disputes/{d['id']}/resolve"
        assert client.post(path, json={"action": "reject", "reason": "no"}, headers=csrf).status_code == 403
        empty = w.client().post(path, json={"action": "reject", "reason": "  "}, headers=bearer(key))
        assert empty.status_code == 422 and empty.json()["error"]["field"] == "reason"
        done = w.client().post(path, json={"action": "reject", "reason": "rate starts in March"}, headers=bearer(key))
        assert done.json()["status"] == "rejected"
        assert client.get(f"/api/v1/disputes/{d['id']}").json()["resolution_reason"] == "rate starts in March"


class TestEvidence:
    def test_a_png_is_stored_with_its_hash_and_listed_on_the_dispute(self, w: World) -> None:
        client, csrf = portal(w)
        d = client.post("/api/v1/disputes", json=wrong_amount(w), headers=csrf).json()
        sent = client.post(f"/api/v1/disputes/{d['id']}/evidence", files={"file": ("invoice.png", PNG, "image/png")},
                           headers=csrf)  # fmt: skip
        assert sent.status_code == 201, sent.text
        assert sent.json()["sha256"] == hashlib.sha256(PNG).hexdigest()
        shown = client.get(f"/api/v1/disputes/{d['id']}").json()["evidence"]
        assert [(e["filename"], e["content_type"], e["size"]) for e in shown] == [("invoice.png", "image/png", 72)]

    def test_too_large_is_413_with_the_limit_and_a_wrong_type_is_422_with_the_allowed_types(
        self, w: World, key: str
    ) -> None:
        client = w.client()
        d = client.post("/api/v1/disputes", json=wrong_amount(w), headers=bearer(key)).json()
        path = f"/api/v1/disputes/{d['id']}/evidence"
        big = client.post(path, files={"file": ("big.txt", b"a" * (LIMIT + 1), "text/plain")}, headers=bearer(key))
        assert big.status_code == 413 and "2 KB" in big.json()["error"]["message"]
        exe = client.post(path, files={"file": ("x.exe", b"MZ\x90\x00\x03" + b"\x00" * 20, "application/x-dosexec")},
                          headers=bearer(key))  # fmt: skip
        assert exe.status_code == 422 and "application/pdf" in exe.json()["error"]["allowed"]
        assert client.get(f"/api/v1/disputes/{d['id']}", headers=bearer(key)).json()["evidence"] == []

    def test_evidence_on_another_partners_dispute_is_404(self, w: World, key: str) -> None:
        d = w.client().post("/api/v1/disputes", json=wrong_amount(w, line_id=w.beta_line), headers=bearer(key)).json()
        client, csrf = portal(w)
        sent = client.post(f"/api/v1/disputes/{d['id']}/evidence", files={"file": ("a.png", PNG, "image/png")},
                           headers=csrf)  # fmt: skip
        assert sent.status_code == 404


class TestSettings:
    def test_sla_days_per_program(self, w: World, key: str) -> None:
        client = w.client()
        path = f"/api/v1/programs/{w.program_id}/dispute-settings"
        assert client.get(path, headers=bearer(key)).json()["sla_days"] == 10
        assert client.put(path, json={"sla_days": 3}, headers=bearer(key)).json()["sla_days"] == 3
        assert client.put(path, json={"sla_days": 0}, headers=bearer(key)).status_code == 422
        d = client.post("/api/v1/disputes", json=wrong_amount(w), headers=bearer(key)).json()
        assert d["sla"] == "due in 3 days"
