"""POST /api/v1/events/import: a multipart CSV upload, all-or-nothing, every bad row named."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.commissions.models import CommissionLine
from partnerpay.events.models import Event
from partnerpay.inbox.models import InboxItem
from partnerpay.web.api.v1 import imports
from tests.api.conftest import Api

HEADER = "type,external_id,occurred_at,customer_external_id,referral_code,amount,currency,product"


def csv_bytes(*lines: str) -> bytes:
    return ("\n".join(lines) + "\n").encode()


def upload(api: Api, program_id: str, data: bytes, key: str | None = None, **params: Any) -> Any:
    query = {"program_id": program_id, **params}
    files = {"file": ("events.csv", data, "text/csv")}
    return api.client.post("/api/v1/events/import", params=query, files=files, headers=api.headers(key))


def written(factory: sessionmaker[Session]) -> tuple[int, int, int]:
    with factory() as s:
        return tuple(  # type: ignore[return-value]
            int(s.scalar(select(func.count()).select_from(model)) or 0) for model in (Event, InboxItem, CommissionLine)
        )


@pytest.fixture
def program(api: Api) -> dict[str, Any]:
    return api.program()


@pytest.fixture
def good(api: Api, program: dict[str, Any]) -> bytes:
    code = api.partner(program["id"])["referral_code"]
    return csv_bytes(
        HEADER,
        f"signup,su-1,2026-01-10T09:00:00Z,cus-1,{code},,,",
        f"invoice_paid,inv-1,2026-01-11T09:00:00Z,cus-1,{code},4900,EUR,Pro plan",
    )


class TestImportEventsCsv:
    def test_an_upload_records_the_events_and_their_commissions_and_answers_201(
        self, api: Api, program: dict[str, Any], good: bytes, session_factory: sessionmaker[Session]
    ) -> None:
        response = upload(api, program["id"], good)
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["rows"], body["created"], body["duplicates"], body["commissions"]) == (2, 2, 0, 1)
        assert body["by_type"] == {"invoice_paid": 1, "signup": 1} and body["amounts"] == {"EUR": 4900}
        assert body["import_id"].startswith("imp_") and body["errors"] == []
        assert written(session_factory) == (2, 2, 1)
        with session_factory() as s:
            events = {e.external_id: e for e in s.scalars(select(Event))}
            sources = set(s.scalars(select(InboxItem.source)))
        assert events["inv-1"].partner_id is not None and events["inv-1"].product == "Pro plan"
        assert sources == {f"csv:{program['id']}"}

    def test_the_same_file_again_creates_nothing_new_and_counts_duplicates(
        self, api: Api, program: dict[str, Any], good: bytes, session_factory: sessionmaker[Session]
    ) -> None:
        assert upload(api, program["id"], good).status_code == 201
        again = upload(api, program["id"], good)
        assert again.status_code == 201
        assert (again.json()["created"], again.json()["duplicates"], again.json()["by_type"]) == (0, 2, {})
        assert written(session_factory) == (2, 2, 1)

    def test_a_dry_run_answers_200_with_what_would_happen_and_writes_nothing(
        self, api: Api, program: dict[str, Any], good: bytes, session_factory: sessionmaker[Session]
    ) -> None:
        response = upload(api, program["id"], good, dry_run="true")
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["dry_run"], body["created"], body["commissions"], body["import_id"]) == (True, 2, 1, None)
        assert written(session_factory) == (0, 0, 0)

    def test_a_bad_file_answers_422_naming_the_row_and_column_of_every_error(
        self, api: Api, program: dict[str, Any], good: bytes, session_factory: sessionmaker[Session]
    ) -> None:
        data = good + csv_bytes(
            "invoice_paid,inv-2,2026-01-11T09:00:00Z,cus-2,,12.50,EUR,",
            "invoice_paid,inv-3,2026-01-11T09:00:00Z,cus-3,,1250,USD,",
            "signup,su-4,31/01/2026,cus-4,,,,",
        )
        response = upload(api, program["id"], data)
        assert response.status_code == 422
        error = response.json()["error"]
        assert (error["code"], error["row"], error["column"], error["field"]) == (
            "validation_error",
            4,
            "amount",
            "amount",
        )
        assert [(e["row"], e["column"]) for e in error["errors"]] == [
            (4, "amount"),
            (5, "currency"),
            (6, "occurred_at"),
        ]
        assert error["errors"][1]["message"].startswith(
            "this program pays in EUR; USD is not accepted without a USD→EUR rate"
        )
        assert error["error_count"] == 3 and error["rows"] == 5 and "nothing was imported" in error["message"]
        assert written(session_factory) == (0, 0, 0)

    def test_an_error_only_recording_finds_names_its_row_and_rolls_back_every_row(
        self, api: Api, program: dict[str, Any], good: bytes, session_factory: sessionmaker[Session]
    ) -> None:
        data = good + csv_bytes("refund,ref-1,2026-01-12T09:00:00Z,cus-1,,9900,EUR,")
        response = upload(api, program["id"], data)
        assert response.status_code == 422
        error = response.json()["error"]
        assert (error["row"], error["column"]) == (4, "amount") and "exceeds" in error["message"]
        assert written(session_factory) == (0, 0, 0)

    def test_an_unknown_column_is_refused_naming_it(self, api: Api, program: dict[str, Any]) -> None:
        response = upload(api, program["id"], csv_bytes(HEADER + ",colour", "signup,a,2026-01-11T09:00:00Z,c,,,,,red"))
        assert response.status_code == 422
        assert "unknown column(s) colour" in response.json()["error"]["errors"][0]["message"]

    def test_a_file_over_the_limit_answers_413(
        self, api: Api, program: dict[str, Any], good: bytes, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(imports, "MAX_BYTES", 100)
        response = upload(api, program["id"], good * 3)
        assert response.status_code == 413 and response.json()["error"]["code"] == "payload_too_large"

    def test_a_request_without_a_file_answers_422_naming_the_field(self, api: Api, program: dict[str, Any]) -> None:
        response = api.client.post(
            "/api/v1/events/import", params={"program_id": program["id"]}, data={"x": "1"}, headers=api.headers()
        )
        assert response.status_code == 422 and response.json()["error"]["field"] == "file"

    def test_a_key_without_write_scope_gets_403_and_one_of_another_program_404(
        self, api: Api, program: dict[str, Any], good: bytes, session_factory: sessionmaker[Session]
    ) -> None:
        reader = api.key_for(session_factory, scopes=["read"])
        assert upload(api, program["id"], good, key=reader).status_code == 403
        other = api.program(name="Other")
        scoped = api.key_for(session_factory, program_id=other["id"], scopes=["read", "write"])
        assert upload(api, program["id"], good, key=scoped).status_code == 404

    def test_the_same_idempotency_key_replays_the_import(
        self, api: Api, program: dict[str, Any], good: bytes, session_factory: sessionmaker[Session]
    ) -> None:
        params = {"program_id": program["id"]}
        headers = api.headers(**{"Idempotency-Key": "events-1"})
        files = {"file": ("events.csv", good, "text/csv")}
        first = api.client.post("/api/v1/events/import", params=params, files=files, headers=headers)
        again = api.client.post("/api/v1/events/import", params=params, files=files, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
        assert written(session_factory) == (2, 2, 1)

    def test_post_events_still_records_one_event(self, api: Api, program: dict[str, Any]) -> None:
        body = {
            "program_id": program["id"],
            "type": "signup",
            "external_id": "api-1",
            "occurred_at": "2026-01-10T09:00:00Z",
            "customer_external_id": "cus-9",
        }
        assert api.post("/events", body).status_code == 201
        assert api.post("/events", body).status_code == 200

    def test_the_openapi_document_describes_the_upload_and_the_refusal(self, api: Api) -> None:
        operation = api.client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/events/import"]["post"]
        assert "multipart/form-data" in operation["requestBody"]["content"]
        assert {"201", "200", "413", "422"} <= set(operation["responses"])
