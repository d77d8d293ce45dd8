"""The holder's address on a bank payout method: optional, all or nothing, normalised, masked."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partnerpay.kit.errors import ValidationError
from partnerpay.partners.bank_address import FIELDS, STATE_COUNTRIES, address_of, check_bank_address, shown_address

HOME = {"address_line1": "1 Main Street", "address_city": "Springfield", "address_postcode": "62704"}


def refused(data: dict[str, str], default_country: str = "US") -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        check_bank_address(data, default_country=default_country)
    return caught.value


class TestCheckBankAddress:
    def test_no_address_at_all_is_none_and_a_lone_country_does_not_count(self) -> None:
        assert check_bank_address({}, default_country="US") is None
        assert check_bank_address({"address_country": "US", "address_city": "  "}, default_country="US") is None

    def test_a_us_address_takes_the_account_s_country_and_a_normalised_state(self) -> None:
        address = check_bank_address({**HOME, "address_state": " us-il "}, default_country="US")
        assert address == {**HOME, "address_state": "IL", "address_country": "US"}

    def test_a_zip_plus_four_is_kept_and_a_canadian_postcode_needs_a_province(self) -> None:
        assert check_bank_address(
            {**HOME, "address_state": "IL", "address_postcode": "62704-1234"}, default_country="US"
        )
        canada = {**HOME, "address_postcode": "k1a 0b1", "address_country": "ca"}
        assert refused(canada).field == "address_state"
        address = check_bank_address({**canada, "address_state": "ON"}, default_country="US")
        assert address is not None and address["address_postcode"] == "K1A 0B1" and address["address_country"] == "CA"

    def test_a_german_address_needs_no_state_and_keeps_what_was_written(self) -> None:
        address = check_bank_address(
            {**HOME, "address_postcode": "10115", "address_state": "Berlin"}, default_country="DE"
        )
        assert address is not None and address["address_state"] == "Berlin" and address["address_country"] == "DE"

    @pytest.mark.parametrize(
        ("change", "field"),
        [
            ({"address_line1": ""}, "address_line1"),
            ({"address_city": None}, "address_city"),
            ({"address_postcode": ""}, "address_postcode"),
            ({"address_postcode": "627O4"}, "address_postcode"),
            ({"address_state": "ZZ"}, "address_state"),
            ({"address_country": "USA"}, "address_country"),
            ({"address_line1": 12}, "address_line1"),
            ({"address_city": "x" * 61}, "address_city"),
        ],
    )
    def test_each_bad_piece_is_named(self, change: dict[str, object], field: str) -> None:
        data = {**HOME, "address_state": "IL", **change}
        assert refused(data).field == field  # type: ignore[arg-type]

    @given(st.dictionaries(st.sampled_from(FIELDS), st.text(max_size=30)), st.sampled_from(["US", "DE"]))
    def test_any_input_is_refused_at_a_named_field_or_complete(self, data: dict[str, str], country: str) -> None:
        try:
            address = check_bank_address(data, default_country=country)
        except ValidationError as error:
            assert error.field in FIELDS
            return
        if address is None:
            assert not any(str(data.get(name, "")).strip() for name in FIELDS if name != "address_country")
            return
        assert all(address[name] for name in ("address_line1", "address_city", "address_postcode"))
        assert address["address_state"] or address["address_country"] not in STATE_COUNTRIES
        assert address_of(address) == address
        assert shown_address(address) == f"{address['address_city']}, {address['address_country']}"


class TestShown:
    def test_only_city_and_country_are_shown(self) -> None:
        address = check_bank_address({**HOME, "address_state": "IL"}, default_country="US")
        assert shown_address(address) == "Springfield, US"
        assert shown_address(None) is None

    def test_details_without_a_street_have_no_address(self) -> None:
        assert address_of({"iban": "DE89"}) is None
