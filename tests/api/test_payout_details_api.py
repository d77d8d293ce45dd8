"""PUT and GET /partners/{id}/payout-method and /tax-profile: validated, stored encrypted, read back masked."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from partnerpay.auth.models import IdempotencyRecord
from partnerpay.partners.models import PayoutMethod
from tests.api.conftest import Api

IBAN = "DE89370400440532013000"
SEPA = {"type": "sepa", "iban": "DE89 3704 0044 0532 0130 00", "account_holder": "Acme Media GmbH"}
ACH = {
    "type": "ach",
    "routing_number": "111000025",
    "account_number": "000123456789",
    "account_type": "checking",
    "account_holder": "Acme Media LLC",
}
W9 = {"form": "w9", "tin": "04-2103594", "legal_name": "Acme Media LLC", "address": "1 Main St, Springfield, IL"}
W8BEN = {"form": "w8ben", "country": "DE", "legal_name": "Acme Media GmbH", "vat_id": "DE136695976"}


def put(api: Api, path: str, body: Any, key: str | None = None, **headers: str) -> Any:
    return api.client.put(f"/api/v1{path}", json=body, headers=api.headers(key, **headers))


@pytest.fixture
def partner(api: Api) -> dict[str, Any]:
    return api.partner(api.program()["id"])


def assert_error(response: Any, status: int, field: str, text: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field, error
    if text is not None:
        assert text in error["message"], error


class TestPutPayoutMethod:
    def test_a_sepa_account_is_read_back_masked_with_its_bic_derived(self, api: Api, partner: dict[str, Any]) -> None:
        response = put(api, f"/partners/{partner['id']}/payout-method", SEPA)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["type"] == "sepa" and body["iban"] == "DE89 •••• •••• •••• 3000"
        assert body["bic"] == "COBADEFFXXX" and body["account_holder"] == "Acme Media GmbH"
        assert body["payout_review_until"] == "2026-01-22T12:00:00+00:00"  # 7 days of review by default
        assert IBAN not in response.text

    @pytest.mark.parametrize(
        ("data", "field", "shown"),
        [
            (ACH, "account_number", "••••6789"),
            ({"type": "paypal", "email": "jane@example.com"}, "email", "j•••@example.com"),
            ({"type": "stripe_connect", "account_id": "acct_1Nv0FGQ9RKHgCVdK"}, "account_id", "acct_•••••CVdK"),
        ],
    )
    def test_every_type_is_read_back_masked(
        self, api: Api, partner: dict[str, Any], data: dict[str, str], field: str, shown: str
    ) -> None:
        assert put(api, f"/partners/{partner['id']}/payout-method", data).json()[field] == shown
        read = api.get(f"/partners/{partner['id']}/payout-method")
        assert read.status_code == 200 and read.json()[field] == shown and read.json()["type"] == data["type"]

    @pytest.mark.parametrize(
        ("data", "field", "text"),
        [
            ({**SEPA, "iban": "DE89370400440532013001"}, "iban", "IBAN check digits do not match (DE89…3001)"),
            ({**SEPA, "bic": "DEU1DEFF"}, "bic", "(DEU1DEFF)"),
            ({**ACH, "routing_number": "111000026"}, "routing_number", "check digit"),
            ({**ACH, "account_number": "12"}, "account_number", "4 to 17 digits"),
            ({**ACH, "account_type": "gold"}, "account_type", "checking or savings"),
            ({"type": "paypal", "email": "not-an-email"}, "email", "not a valid email"),
            ({"type": "stripe_connect", "account_id": "cus_42"}, "account_id", "acct_"),
            ({"type": "cheque"}, "type", "sepa, ach, paypal, stripe_connect"),
            ({"type": "sepa", "iban": IBAN}, "account_holder", "required"),
        ],
    )
    def test_a_bad_value_is_a_field_error_that_writes_nothing(
        self, api: Api, partner: dict[str, Any], data: dict[str, str], field: str, text: str
    ) -> None:
        assert_error(put(api, f"/partners/{partner['id']}/payout-method", data), 422, field, text)
        assert api.get(f"/partners/{partner['id']}/payout-method").status_code == 404

    def test_a_holder_s_address_is_stored_sealed_and_read_back_as_city_and_country(
        self, api: Api, partner: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        home = {"address_line1": "77 Elm Road", "address_city": "Springfield", "address_state": "IL"}
        response = put(api, f"/partners/{partner['id']}/payout-method", {**ACH, **home, "address_postcode": "62704"})
        assert response.status_code == 200, response.text
        assert response.json()["address"] == "Springfield, US"
        read = api.get(f"/partners/{partner['id']}/payout-method")
        assert read.json()["address"] == "Springfield, US" and "Elm" not in read.text and "62704" not in read.text
        with session_factory() as s:
            sealed = s.scalars(select(PayoutMethod)).one().details_encrypted
        assert "Elm" not in sealed

    @pytest.mark.parametrize(
        ("address", "field", "text"),
        [
            ({"address_city": "Springfield"}, "address_line1", "street address is required"),
            ({"address_line1": "1 Main", "address_city": "X", "address_state": "IL"}, "address_postcode", "required"),
            ({"address_line1": "1 Main", "address_city": "X", "address_postcode": "62704"}, "address_state", "US"),
            ({"address_line1": "1 M", "address_city": "X", "address_state": "XX", "address_postcode": "62704"},
             "address_state", "'XX'"),
            ({"address_line1": "1 M", "address_city": "X", "address_state": "IL", "address_postcode": "6270"},
             "address_postcode", "ZIP"),
            ({"address_line1": "1 M", "address_city": "X", "address_postcode": "1", "address_country": "Germany"},
             "address_country", "two-letter"),
        ],
    )  # fmt: skip
    def test_half_an_address_is_refused_at_its_field(
        self, api: Api, partner: dict[str, Any], address: dict[str, str], field: str, text: str
    ) -> None:
        assert_error(put(api, f"/partners/{partner['id']}/payout-method", {**ACH, **address}), 422, field, text)
        assert api.get(f"/partners/{partner['id']}/payout-method").status_code == 404

    def test_a_body_that_is_not_an_object_is_refused(self, api: Api, partner: dict[str, Any]) -> None:
        assert put(api, f"/partners/{partner['id']}/payout-method", ["sepa"]).status_code == 422

    def test_a_read_only_key_is_forbidden(
        self, api: Api, partner: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        viewer = api.key_for(session_factory, scopes=["read"])
        assert put(api, f"/partners/{partner['id']}/payout-method", SEPA, key=viewer).status_code == 403

    def test_another_programs_partner_does_not_exist_for_a_scoped_key(
        self, api: Api, partner: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        other = api.program(name="Other")
        scoped = api.key_for(session_factory, program_id=other["id"])
        assert_error(put(api, f"/partners/{partner['id']}/payout-method", SEPA, key=scoped), 404, "partner_id")
        assert api.get(f"/partners/{partner['id']}/payout-method", key=scoped).status_code == 404

    def test_a_replay_with_the_same_idempotency_key_returns_the_first_answer_and_stores_no_numbers(
        self, api: Api, partner: dict[str, Any], session_factory: sessionmaker[Session]
    ) -> None:
        path = f"/partners/{partner['id']}/payout-method"
        first = put(api, path, SEPA, **{"Idempotency-Key": "pm-1"})
        again = put(api, path, SEPA, **{"Idempotency-Key": "pm-1"})
        assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
        assert put(api, path, ACH, **{"Idempotency-Key": "pm-1"}).status_code == 409
        with session_factory() as s:
            record = s.scalars(select(IdempotencyRecord)).one()
            assert IBAN not in (record.response_body or "") + record.request_hash


class TestGetPayoutMethod:
    def test_a_partner_without_a_method_is_404_with_a_clear_message(self, api: Api, partner: dict[str, Any]) -> None:
        assert_error(api.get(f"/partners/{partner['id']}/payout-method"), 404, "payout_method", "no payout method")

    def test_only_the_newest_method_is_returned(self, api: Api, partner: dict[str, Any]) -> None:
        put(api, f"/partners/{partner['id']}/payout-method", SEPA)
        put(api, f"/partners/{partner['id']}/payout-method", ACH)
        assert api.get(f"/partners/{partner['id']}/payout-method").json()["type"] == "ach"


class TestPutTaxProfile:
    def test_a_w9_is_read_back_with_the_tin_masked(self, api: Api, partner: dict[str, Any]) -> None:
        response = put(api, f"/partners/{partner['id']}/tax-profile", W9)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["form"], body["tin"], body["tin_type"], body["tax_state"]) == ("w9", "••••3594", "ein", "ok")
        assert "042103594" not in response.text and "1 Main St" not in response.text

    def test_a_w8ben_with_a_vat_id_is_read_back_masked(self, api: Api, partner: dict[str, Any]) -> None:
        put(api, f"/partners/{partner['id']}/tax-profile", W8BEN)
        body = api.get(f"/partners/{partner['id']}/tax-profile").json()
        assert (body["country"], body["vat_id"], body["tax_state"]) == ("DE", "DE•••••5976", "ok")

    @pytest.mark.parametrize(
        ("data", "field", "text"),
        [
            ({**W9, "tin": "000-12-3456"}, "tin", "(…3456)"),
            ({**W9, "address": ""}, "address", "required"),
            ({**W8BEN, "country": "US"}, "country", "W-9"),
            ({**W8BEN, "country": "ZZ"}, "country", "ISO 3166"),
            ({**W8BEN, "vat_id": "DE136695977"}, "vat_id", "check digits do not match (DE…5977)"),
            ({"form": "1099"}, "form", "w9 or w8ben"),
        ],
    )
    def test_a_bad_value_is_a_field_error_and_the_tax_form_stays_missing(
        self, api: Api, partner: dict[str, Any], data: dict[str, str], field: str, text: str
    ) -> None:
        assert_error(put(api, f"/partners/{partner['id']}/tax-profile", data), 422, field, text)
        assert_error(api.get(f"/partners/{partner['id']}/tax-profile"), 404, "tax_profile", "tax form missing")


class TestOpenApi:
    def test_both_bodies_are_documented_as_one_of_their_shapes(self, api: Api) -> None:
        spec = api.client.get("/api/v1/openapi.json").json()
        put_method = spec["paths"]["/api/v1/partners/{partner_id}/payout-method"]["put"]
        schema = put_method["requestBody"]["content"]["application/json"]["schema"]
        assert [s["properties"]["type"]["const"] for s in schema["oneOf"]] == [
            "sepa",
            "ach",
            "paypal",
            "stripe_connect",
        ]
        tax = spec["paths"]["/api/v1/partners/{partner_id}/tax-profile"]["put"]["requestBody"]["content"]
        assert len(tax["application/json"]["schema"]["oneOf"]) == 2
