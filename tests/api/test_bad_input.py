"""Bad input gets a 4xx naming the field, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.audit.models import AuditEntry
from partnerpay.db.models import Base
from tests.api.conftest import Api
from tests.api.test_skeleton import invoice


def row_counts(session_factory: sessionmaker[Session]) -> dict[str, int]:
    with session_factory() as s:
        return {
            t.name: int(s.scalar(select(func.count()).select_from(t)) or 0)
            for t in Base.metadata.sorted_tables
            if t.name != "idempotency_records"
        }


def assert_error(response: Any, status: int, field: str | None, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["message"]
    if field is not None:
        assert error.get("field") == field, error
    if code is not None:
        assert error["code"] == code
    return error  # type: ignore[no-any-return]


class TestProgramInput:
    @pytest.mark.parametrize(
        ("body", "field"),
        [
            ({"name": "P", "currency": "EURO", "hold_days": 30}, "currency"),
            ({"name": "P", "currency": "ABC", "hold_days": 30}, "currency"),
            ({"name": "P", "currency": "EUR", "hold_days": -1}, "hold_days"),
            ({"name": "P", "currency": "EUR", "hold_days": 30.0}, "hold_days"),
            ({"name": "P", "currency": "EUR", "hold_days": 30, "default_percent_bp": 20.5}, "default_percent_bp"),
            ({"name": "P", "currency": "EUR", "hold_days": 30, "default_percent_bp": 10_001}, "default_percent_bp"),
            ({"currency": "EUR", "hold_days": 30}, "name"),
            ({"name": "P", "currency": "EUR", "hold_days": 30, "colour": "red"}, "colour"),
        ],
    )
    def test_bad_program_is_refused_naming_the_field(
        self, api: Api, session_factory: sessionmaker[Session], body: dict[str, Any], field: str
    ) -> None:
        before = row_counts(session_factory)
        assert_error(api.post("/programs", body), 422, field)
        assert row_counts(session_factory) == before


class TestEventInput:
    def test_float_amount_is_refused_with_a_clear_message(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        partner = api.partner(program["id"])
        before = row_counts(session_factory)
        error = assert_error(
            api.post("/events", invoice(program["id"], "inv_f", "c1", 12.5, partner_id=partner["id"])), 422, "amount"
        )
        assert "integer" in error["message"] and "float" in error["message"]
        assert_error(
            api.post("/events", invoice(program["id"], "inv_g", "c1", "1250", partner_id=partner["id"])), 422, "amount"
        )
        assert row_counts(session_factory) == before

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"amount": -100}, "amount"),
            ({"currency": "USD"}, "currency"),
            ({"currency": "XYZ"}, "currency"),
            ({"referral_code": "no-such-code"}, "referral_code"),
            ({"partner_id": "ptn_unknown"}, "partner_id"),
            ({"type": "bonus_paid"}, "type"),
            ({"occurred_at": "2026-01-15T12:00:00"}, "occurred_at"),
            ({"amount": None}, "amount"),
            ({"coupon": "SAVE10"}, "coupon"),
        ],
    )
    def test_bad_event_is_refused_and_nothing_is_written(
        self, api: Api, session_factory: sessionmaker[Session], change: dict[str, Any], field: str
    ) -> None:
        program = api.program()
        api.partner(program["id"])
        before = row_counts(session_factory)
        body = {**invoice(program["id"], "inv_bad", "c1", 1000), **change}
        assert_error(api.post("/events", body), 422, field)
        assert row_counts(session_factory) == before

    def test_refund_larger_than_what_was_paid_is_refused(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        partner = api.partner(program["id"])
        api.post("/events", invoice(program["id"], "inv_1", "c1", 1000, partner_id=partner["id"]))
        before = row_counts(session_factory)
        refund = {**invoice(program["id"], "re_1", "c1", 1001), "type": "refund", "original_external_id": "inv_1"}
        error = assert_error(api.post("/events", refund), 422, "amount")
        assert "€10.00" in error["message"]
        assert row_counts(session_factory) == before

    def test_same_external_id_replays_and_different_content_conflicts(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        partner = api.partner(program["id"])
        body = invoice(program["id"], "inv_1", "c1", 1000, partner_id=partner["id"])
        first = api.post("/events", body)
        counts = row_counts(session_factory)
        again = api.post("/events", body)
        assert again.status_code == 200 and again.json() == first.json()
        assert row_counts(session_factory) == counts
        assert_error(api.post("/events", {**body, "amount": 2000}), 409, "external_id")


class TestApprovals:
    def test_viewer_cannot_approve_and_nothing_changes(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program = api.program()
        partner = api.partner(program["id"])
        line = api.post("/events", invoice(program["id"], "i1", "c1", 1000, partner_id=partner["id"])).json()
        viewer = api.key_for(session_factory, scopes=["read"])
        before = row_counts(session_factory)
        error = assert_error(
            api.post("/commissions/approve", {"ids": [line["commissions"][0]["id"]]}, key=viewer),
            403,
            None,
            "forbidden",
        )
        assert "approve" in error["message"]
        assert row_counts(session_factory) == before

    def test_second_approve_is_refused_naming_the_line(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program = api.program()
        partner = api.partner(program["id"])
        ids = [
            api.post("/events", invoice(program["id"], f"i{n}", "c1", 1000, partner_id=partner["id"])).json()[
                "commissions"
            ][0]["id"]
            for n in range(2)
        ]
        assert api.post("/commissions/approve", {"ids": ids[:1]}).status_code == 200
        with session_factory() as s:
            audit_rows = s.scalar(select(func.count()).select_from(AuditEntry))
        error = assert_error(api.post("/commissions/approve", {"ids": ids}), 409, "ids", "invalid_transition")
        assert ids[0] in error["message"] and error["ids"] == [ids[0]]
        assert api.get("/commissions", status="pending").json()["data"][0]["id"] == ids[1], "all or nothing"
        with session_factory() as s:
            assert s.scalar(select(func.count()).select_from(AuditEntry)) == audit_rows


class TestOwnership:
    def test_objects_of_another_program_are_404_not_403(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        mine, theirs = api.program(name="Mine"), api.program(name="Theirs")
        other_partner = api.partner(theirs["id"], "Other Co")
        line = api.post("/events", invoice(theirs["id"], "i1", "c1", 1000, partner_id=other_partner["id"])).json()
        scoped = api.key_for(session_factory, program_id=mine["id"])
        assert_error(api.get(f"/programs/{theirs['id']}", key=scoped), 404, None, "not_found")
        assert_error(api.get(f"/partners/{other_partner['id']}", key=scoped), 404, None)
        assert_error(api.get(f"/partners/{other_partner['id']}/balance", key=scoped), 404, None)
        assert_error(api.post("/commissions/approve", {"ids": [line["commissions"][0]["id"]]}, key=scoped), 404, "ids")
        assert api.get("/commissions", key=scoped).json()["data"] == []
        assert [p["id"] for p in api.get("/programs", key=scoped).json()["data"]] == [mine["id"]]
        body = {"program_id": theirs["id"], "name": "X", "email": "x@example.com"}
        assert_error(api.post("/partners", body, key=scoped), 404, "program_id")

    def test_missing_or_unknown_key_is_401(self, api: Api) -> None:
        assert_error(api.client.get("/api/v1/programs"), 401, None, "unauthorized")
        assert_error(api.get("/programs", key="pp_not-a-key"), 401, None, "unauthorized")


class TestIdempotencyKey:
    def test_same_key_same_body_replays_and_other_body_conflicts(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        body = {"name": "Once", "currency": "EUR", "hold_days": 30}
        first = api.post("/programs", body, **{"Idempotency-Key": "k-1"})
        counts = row_counts(session_factory)
        again = api.post("/programs", body, **{"Idempotency-Key": "k-1"})
        assert again.status_code == 201 and again.json() == first.json()
        assert again.headers["Idempotent-Replayed"] == "true"
        assert row_counts(session_factory) == counts
        assert_error(
            api.post("/programs", {**body, "name": "Twice"}, **{"Idempotency-Key": "k-1"}), 409, "Idempotency-Key"
        )

    def test_a_failed_request_does_not_burn_the_key(self, api: Api) -> None:
        bad = api.post("/programs", {"name": "P", "currency": "EURO", "hold_days": 1}, **{"Idempotency-Key": "k-2"})
        assert bad.status_code == 422
        good = api.post("/programs", {"name": "P", "currency": "EUR", "hold_days": 1}, **{"Idempotency-Key": "k-2"})
        assert good.status_code == 201


class TestPagination:
    def test_cursor_walks_every_partner_once(self, api: Api) -> None:
        program = api.program()
        made = {api.partner(program["id"], f"P{n}", f"p{n}@example.com")["id"] for n in range(7)}
        seen: list[str] = []
        cursor = None
        while True:
            params = {"program_id": program["id"], "limit": 3, **({"cursor": cursor} if cursor else {})}
            page = api.get("/partners", **params).json()
            seen += [p["id"] for p in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == sorted(made) and len(seen) == 7
        assert_error(api.get("/partners", limit=501), 422, "limit")
