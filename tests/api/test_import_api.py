"""POST /api/v1/partners/import: a multipart CSV upload, all-or-nothing, every bad row named."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.partners import import_csv
from partnerpay.partners.models import Partner, PayoutMethod
from partnerpay.web.api.v1 import imports
from tests.api.conftest import Api

GOOD = b"name,email,country,payout_email\nAcme,hello@acme.example,DE,pay@acme.example\nBeta Blog,beta@blog.example,,\n"


def upload(api: Api, program_id: str, data: bytes, key: str | None = None, **params: Any) -> Any:
    query = {"program_id": program_id, **params}
    files = {"file": ("partners.csv", data, "text/csv")}
    return api.client.post("/api/v1/partners/import", params=query, files=files, headers=api.headers(key))


def partners(factory: sessionmaker[Session]) -> int:
    with factory() as s:
        return int(s.scalar(select(func.count()).select_from(Partner)) or 0)


class TestImportPartnersCsv:
    def test_an_upload_creates_the_partners_and_answers_201_with_the_counts(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        response = upload(api, program["id"], GOOD)
        assert response.status_code == 201, response.text
        body = response.json()
        assert (body["rows"], body["created"], body["with_payout_email"], body["errors"]) == (2, 2, 1, [])
        assert body["import_id"].startswith("imp_") and body["filename"] == "partners.csv"
        listed = api.get("/partners", program_id=program["id"]).json()["data"]
        assert sorted(p["email"] for p in listed) == ["beta@blog.example", "hello@acme.example"]
        assert all(p["status"] == "active" and p["referral_code"] for p in listed)
        with session_factory() as s:
            assert "pay@acme.example" not in s.scalars(select(PayoutMethod.details_encrypted)).one()

    def test_a_dry_run_answers_200_with_what_would_happen_and_writes_nothing(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        response = upload(api, program["id"], GOOD, dry_run="true")
        assert response.status_code == 200, response.text
        assert (response.json()["rows"], response.json()["created"], response.json()["dry_run"]) == (2, 0, True)
        assert partners(session_factory) == 0

    def test_a_bad_file_answers_422_naming_the_row_and_column_of_every_error(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        api.partner(program["id"], "Old Friend", "old@friend.example")
        data = b"name,email,group\nA,a@x.example,\nB,old@friend.example,\nC,a@x.example,Gold\n"
        response = upload(api, program["id"], data)
        assert response.status_code == 422
        error = response.json()["error"]
        assert (error["code"], error["row"], error["column"], error["field"]) == (
            "validation_error",
            3,
            "email",
            "email",
        )
        assert error["error_count"] == 3 and error["rows"] == 3
        assert [(e["row"], e["column"]) for e in error["errors"]] == [(3, "email"), (4, "email"), (4, "group")]
        assert "a@x.example is also on row 2" in error["errors"][1]["message"]
        assert "nothing was imported" in error["message"]
        assert partners(session_factory) == 1

    def test_an_unknown_column_is_refused_naming_it(self, api: Api) -> None:
        response = upload(api, api.program()["id"], b"name,email,phone\nA,a@x.example,1\n")
        assert response.status_code == 422
        assert "unknown column(s) phone" in response.json()["error"]["errors"][0]["message"]

    def test_a_file_over_the_limit_answers_413(self, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(imports, "MAX_BYTES", 100)
        monkeypatch.setattr(import_csv, "MAX_BYTES", 100)
        response = upload(api, api.program()["id"], GOOD * 3)
        assert response.status_code == 413
        assert response.json()["error"]["code"] == "payload_too_large"

    def test_a_body_announced_over_the_limit_is_refused_before_it_is_read(self, api: Api) -> None:
        headers = api.headers(**{"Content-Length": str(60 * 1024 * 1024), "Content-Type": "multipart/form-data; b=x"})
        response = api.client.post("/api/v1/partners/import?program_id=prg_x", content=b"", headers=headers)
        assert response.status_code == 413

    def test_a_request_without_a_file_answers_422_naming_the_field(self, api: Api) -> None:
        response = api.client.post(
            "/api/v1/partners/import",
            params={"program_id": api.program()["id"]},
            data={"x": "1"},
            headers=api.headers(),
        )
        assert response.status_code == 422 and response.json()["error"]["field"] == "file"

    def test_a_key_without_write_scope_gets_403(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program = api.program()
        reader = api.key_for(session_factory, scopes=["read"])
        assert upload(api, program["id"], GOOD, key=reader).status_code == 403

    def test_a_key_of_another_program_gets_404(self, api: Api, session_factory: sessionmaker[Session]) -> None:
        program, other = api.program(), api.program(name="Other")
        scoped = api.key_for(session_factory, program_id=other["id"], scopes=["read", "write"])
        assert upload(api, program["id"], GOOD, key=scoped).status_code == 404

    def test_the_same_idempotency_key_replays_the_import_and_refuses_another_file(
        self, api: Api, session_factory: sessionmaker[Session]
    ) -> None:
        program = api.program()
        files = {"file": ("partners.csv", GOOD, "text/csv")}
        params = {"program_id": program["id"]}
        headers = api.headers(**{"Idempotency-Key": "import-1"})
        first = api.client.post("/api/v1/partners/import", params=params, files=files, headers=headers)
        again = api.client.post("/api/v1/partners/import", params=params, files=files, headers=headers)
        assert first.status_code == again.status_code == 201
        assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
        assert partners(session_factory) == 2
        other = {"file": ("partners.csv", b"name,email\nC,c@x.example\n", "text/csv")}
        assert (
            api.client.post("/api/v1/partners/import", params=params, files=other, headers=headers).status_code == 409
        )

    def test_the_openapi_document_describes_the_upload_and_the_refusal(self, api: Api) -> None:
        operation = api.client.get("/api/v1/openapi.json").json()["paths"]["/api/v1/partners/import"]["post"]
        assert "multipart/form-data" in operation["requestBody"]["content"]
        assert {"201", "200", "413", "422"} <= set(operation["responses"])
