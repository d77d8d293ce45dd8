"""FX rates over HTTP: recording with errors at the field, conflicts, lists, conversion previews, who may see them."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from tests.api.conftest import Api
from tests.api.test_deals_api import portal


def row(
    base: str = "EUR", quote: str = "USD", rate: Any = "1.0842", day: str = "2026-03-01", **kw: Any
) -> dict[str, Any]:
    return {"base": base, "quote": quote, "rate": rate, "rate_date": day, "source": "ECB reference rate", **kw}


@pytest.fixture
def program(api: Api) -> str:
    return str(api.program(currency="EUR")["id"])


def post(api: Api, program: str, *rows: dict[str, Any], key: str | None = None, **body: Any) -> Any:
    return api.post(f"/programs/{program}/fx-rates", {"rates": list(rows), **body}, key=key)


class TestRecord:
    def test_rates_are_created_and_answered_as_exact_strings(self, api: Api, program: str) -> None:
        response = post(api, program, row(), row("JPY", "EUR", "0.00610"))
        assert response.status_code == 201, response.text
        data = response.json()["data"]
        assert [(d["base"], d["quote"], d["rate"], d["rate_date"], d["outcome"]) for d in data] == [
            ("EUR", "USD", "1.0842", "2026-03-01", "created"),
            ("JPY", "EUR", "0.0061", "2026-03-01", "created"),
        ]
        assert all(d["id"].startswith("fxr_") and d["program_id"] == program for d in data)

    @pytest.mark.parametrize(
        ("bad", "field", "message"),
        [(row(rate=1.0842), "rates.0.rate", "decimal string"), (row(rate="-1"), "rates.0.rate", "positive"),
         (row(rate="1.12345678901"), "rates.0.rate", "decimal places"), (row(base="XYZ"), "rates.0.base", "currency"),
         (row(quote="EUR"), "rates.0.quote", "two currencies"), (row(day="tomorrow"), "rates.0.rate_date", "day")],
    )  # fmt: skip
    def test_bad_input_is_a_422_naming_the_field(
        self, api: Api, program: str, bad: dict[str, Any], field: str, message: str
    ) -> None:
        response = post(api, program, bad)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert (error["field"], message in error["message"]) == (field, True), error
        assert api.get(f"/programs/{program}/fx-rates").json()["data"] == []

    def test_an_empty_list_and_a_non_boolean_replace_are_refused(self, api: Api, program: str) -> None:
        assert post(api, program).json()["error"]["field"] == "rates"
        assert post(api, program, row(), replace="yes").json()["error"]["field"] == "replace"

    def test_a_conflicting_rate_for_the_day_is_409_until_replaced(self, api: Api, program: str) -> None:
        first = post(api, program, row()).json()["data"][0]
        assert post(api, program, row()).json()["data"][0]["outcome"] == "unchanged"
        conflict = post(api, program, row(rate="1.09"))
        assert conflict.status_code == 409, conflict.text
        assert conflict.json()["error"]["field"] == "rates.0.rate"
        assert "replace: true" in conflict.json()["error"]["message"]
        replaced = post(api, program, row(rate="1.09"), replace=True)
        assert replaced.status_code == 201, replaced.text
        assert [(d["id"], d["rate"], d["outcome"]) for d in replaced.json()["data"]] == [
            (first["id"], "1.09", "replaced")
        ]

    def test_recording_needs_the_write_scope(
        self, api: Api, program: str, session_factory: sessionmaker[Session]
    ) -> None:
        reader = api.key_for(session_factory, scopes=["read"])
        assert post(api, program, row(), key=reader).status_code == 403
        assert api.get(f"/programs/{program}/fx-rates", key=reader).status_code == 200


class TestVisibility:
    def test_another_programs_key_gets_404(
        self, api: Api, program: str, session_factory: sessionmaker[Session]
    ) -> None:
        other = str(api.program(name="Other")["id"])
        scoped = api.key_for(session_factory, program_id=other)
        assert post(api, program, row(), key=scoped).status_code == 404
        assert api.get(f"/programs/{program}/fx-rates", key=scoped).status_code == 404
        assert (
            api.get(f"/programs/{program}/fx-rates/convert", key=scoped, amount=1, **{"from": "EUR"}).status_code == 404
        )
        assert post(api, other, row(), key=scoped).status_code == 201

    def test_a_portal_session_sees_nothing(
        self, api: Api, program: str, session_factory: sessionmaker[Session]
    ) -> None:
        # The generic API admits API keys and staff sessions only; fx.service itself answers a partner actor 404
        # (tests/integration/test_fx_rates.py), should a portal route ever call it.
        partner = api.partner(program)
        client, csrf = portal(api, session_factory, partner["id"], "portal@acme.example")
        assert post(api, program, row()).status_code == 201
        listed = client.get(f"/api/v1/programs/{program}/fx-rates")
        assert listed.status_code == 401, listed.text
        posted = client.post(f"/api/v1/programs/{program}/fx-rates", json={"rates": [row()]},
                             headers={"X-CSRF-Token": csrf})  # fmt: skip
        assert posted.status_code == 401, posted.text


class TestListAndConvert:
    @pytest.fixture
    def rates(self, api: Api, program: str) -> None:
        response = post(api, program, row(rate="1.08"), row(rate="1.10", day="2026-03-05"),
                        row("JPY", "EUR", "0.0061", day="2026-03-02"))  # fmt: skip
        assert response.status_code == 201, response.text

    def test_the_list_filters_by_pair_and_day_and_pages_by_cursor(self, api: Api, program: str, rates: None) -> None:
        path = f"/programs/{program}/fx-rates"
        assert {d["rate"] for d in api.get(path, base="EUR", quote="USD").json()["data"]} == {"1.08", "1.1"}
        assert [d["rate"] for d in api.get(path, base="EUR", on="2026-03-04").json()["data"]] == ["1.08"]
        first = api.get(path, limit=2).json()
        second = api.get(path, limit=2, cursor=first["next_cursor"]).json()
        assert (len(first["data"]), len(second["data"]), second["next_cursor"]) == (2, 1, None)
        assert api.get(path, base="EURO").json()["error"]["field"] == "base"

    def test_a_preview_converts_with_the_rate_of_the_day(self, api: Api, program: str, rates: None) -> None:
        path = f"/programs/{program}/fx-rates/convert"
        result = api.get(path, amount=150_000, on="2026-03-02", **{"from": "JPY"}).json()
        assert (result["amount"], result["currency"], result["rate"], result["inverted"], result["rounding"]) == (
            91_500, "EUR", "0.0061", False, "half_even")  # fmt: skip
        assert result["explanation"] == "¥150,000 at 1 JPY = 0.0061 EUR (ECB reference rate, 2 Mar 2026) = €915.00"
        later = api.get(path, amount=120_000, on="2026-03-06", to="USD", **{"from": "EUR"}).json()
        assert (later["amount"], later["rate"], later["rate_date"]) == (132_000, "1.1", "2026-03-05")
        back = api.get(path, amount=132_000, on="2026-03-06", to="EUR", **{"from": "USD"}).json()
        assert (back["amount"], back["inverted"]) == (120_000, True)

    def test_a_preview_without_a_rate_names_the_pair_and_the_day(self, api: Api, program: str, rates: None) -> None:
        response = api.get(f"/programs/{program}/fx-rates/convert", amount=100, on="2026-02-01", **{"from": "USD"})
        assert response.status_code == 422
        assert response.json()["error"]["message"] == (
            f"no USD→EUR rate on or before 2026-02-01; add one with POST /programs/{program}/fx-rates"
        )

    def test_a_fractional_amount_is_refused(self, api: Api, program: str, rates: None) -> None:
        response = api.get(f"/programs/{program}/fx-rates/convert", amount="1.5", **{"from": "JPY"})
        assert (response.status_code, response.json()["error"]["field"]) == (422, "amount")


def test_the_openapi_document_describes_the_rate_routes(api: Api) -> None:
    spec = api.client.get("/api/v1/openapi.json").json()
    paths = spec["paths"]
    assert {"/api/v1/programs/{program_id}/fx-rates", "/api/v1/programs/{program_id}/fx-rates/convert"} <= set(paths)
    assert set(paths["/api/v1/programs/{program_id}/fx-rates"]) == {"get", "post"}
