"""Payout methods and tax profiles: each bad value gets a field-level error that shows it masked."""

from __future__ import annotations

import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partnerpay.kit.errors import ValidationError
from partnerpay.partners.validation import (
    check_account_number,
    check_bic,
    check_country,
    check_iban,
    check_payout_method,
    check_routing_number,
    check_tax_profile,
    check_us_tin,
    check_vat_id,
    describe_masked,
    mask_email,
    mask_iban,
    mask_tail,
)

IBAN = "DE89370400440532013000"


def iban_with_check_digits(country: str, bban: str) -> str:
    """An IBAN whose ISO 7064 check digits are right, whatever the BBAN says (for national-checksum tests)."""
    digits = "".join(str(int(c, 36)) for c in bban + country + "00")
    return f"{country}{98 - int(digits) % 97:02d}{bban}"


def error_of(check: object, *args: object) -> ValidationError:
    with pytest.raises(ValidationError) as raised:
        check(*args)  # type: ignore[operator]
    return raised.value


class TestMasks:
    def test_an_iban_shows_country_check_digits_and_last_four_only(self) -> None:
        assert mask_iban(IBAN) == "DE89 •••• •••• •••• 3000"

    def test_an_iban_mask_does_not_tell_the_length(self) -> None:
        assert len(mask_iban(IBAN)) == len(mask_iban("FR1420041010050500013M02606"))

    def test_an_account_number_shows_its_last_four(self) -> None:
        assert mask_tail("000123456789") == "••••6789"

    def test_a_short_value_never_shows_more_than_half(self) -> None:
        assert mask_tail("1234") == "••••34"

    def test_an_email_keeps_its_first_letter_and_domain(self) -> None:
        assert mask_email("jane@example.com") == "j•••@example.com"

    def test_a_payout_method_reads_as_one_line(self) -> None:
        assert describe_masked("sepa", {"iban": mask_iban(IBAN)}) == "SEPA bank account DE89 •••• •••• •••• 3000"


class TestCheckIban:
    def test_spaces_and_lower_case_are_accepted(self) -> None:
        assert check_iban("de89 3704 0044 0532 0130 00").compact == IBAN

    def test_wrong_check_digits_are_named_with_the_value_masked(self) -> None:
        err = error_of(check_iban, "DE89370400440532013001")
        assert err.field == "iban"
        assert err.message == "IBAN check digits do not match (DE89…3001)"

    def test_a_wrong_length_says_how_long_the_countrys_ibans_are(self) -> None:
        err = error_of(check_iban, "DE8937040044053201300")
        assert "21 characters" in err.message and "Germany (DE) have 22" in err.message

    def test_an_unknown_country_is_named(self) -> None:
        assert "'XX' is not one" in error_of(check_iban, "XX89370400440532013000").message

    def test_a_mistyped_character_breaks_the_layout(self) -> None:
        assert "layout" in error_of(check_iban, "DE89370400440532013O00").message

    def test_a_wrong_national_check_digit_is_caught_even_when_the_iban_check_digits_fit(self) -> None:
        # French RIB key 06 made 07, IBAN check digits recomputed to match.
        err = error_of(check_iban, iban_with_check_digits("FR", "20041010050500013M02607"))
        assert "national check digits" in err.message

    def test_an_iban_outside_the_sepa_zone_is_refused_for_sepa(self) -> None:
        assert "outside the SEPA zone" in error_of(check_iban, "BR1800360305000010009795493C1").message

    @given(st.text(alphabet=string.ascii_uppercase + string.digits, min_size=15, max_size=34))
    def test_no_error_message_ever_holds_the_whole_iban(self, value: str) -> None:
        try:
            check_iban(value)
        except ValidationError as exc:
            assert value not in exc.message


class TestCheckBic:
    def test_a_valid_bic_is_accepted(self) -> None:
        assert str(check_bic("COBADEFFXXX")) == "COBADEFFXXX"

    def test_a_bic_of_the_wrong_length_is_refused(self) -> None:
        assert error_of(check_bic, "DEUTDEF").message.startswith("BIC must have 8 or 11 characters, not 7")

    def test_digits_in_the_bank_code_are_refused(self) -> None:
        err = error_of(check_bic, "DEU1DEFF")
        assert err.field == "bic" and "(DEU1DEFF)" in err.message

    def test_an_unknown_country_is_refused(self) -> None:
        assert "'XX' is not a country" in error_of(check_bic, "DEUTXXFF").message


class TestCheckRoutingNumber:
    def test_a_valid_aba_number_is_accepted(self) -> None:
        assert check_routing_number("111000025") == "111000025"

    def test_a_wrong_check_digit_is_refused(self) -> None:
        err = error_of(check_routing_number, "111000026")
        assert err.field == "routing_number" and "check digit" in err.message

    def test_a_wrong_length_is_refused(self) -> None:
        assert "9 digits, not 8" in error_of(check_routing_number, "11100002").message


class TestCheckAccountNumber:
    def test_dashes_are_dropped(self) -> None:
        assert check_account_number("0001-2345-6789") == "000123456789"

    @pytest.mark.parametrize("value", ["123", "123456789012345678", "12345abc"])
    def test_anything_but_4_to_17_digits_is_refused_masked(self, value: str) -> None:
        err = error_of(check_account_number, value)
        assert err.field == "account_number" and value not in err.message


class TestCheckPayoutMethod:
    def test_a_sepa_account_gets_its_bic_from_the_iban(self) -> None:
        checked = check_payout_method({"type": "sepa", "iban": IBAN, "account_holder": "Acme Media GmbH"})
        assert checked.details == {"iban": IBAN, "bic": "COBADEFFXXX", "account_holder": "Acme Media GmbH"}
        assert checked.masked["iban"] == "DE89 •••• •••• •••• 3000" and checked.masked["bank_name"] == "Commerzbank"

    def test_an_ach_account_is_masked_to_its_last_four(self) -> None:
        checked = check_payout_method(
            {
                "type": "ach",
                "routing_number": "111000025",
                "account_number": "000123456789",
                "account_type": "Savings",
                "account_holder": "Jane Doe",
            }
        )
        assert checked.masked["account_number"] == "••••6789" and checked.details["account_type"] == "savings"
        assert "000123456789" not in str(checked.masked)

    def test_an_ach_account_type_must_be_checking_or_savings(self) -> None:
        data = {"type": "ach", "routing_number": "111000025", "account_number": "12345678", "account_type": "gold"}
        assert error_of(check_payout_method, {**data, "account_holder": "J"}).field == "account_type"

    def test_a_paypal_email_is_checked_and_partly_masked(self) -> None:
        assert check_payout_method({"type": "paypal", "email": "jane@example.com"}).masked == {
            "email": "j•••@example.com"
        }
        err = error_of(check_payout_method, {"type": "paypal", "email": "jane@example"})
        assert err.field == "email" and "jane@example" not in err.message

    def test_a_stripe_account_id_starts_with_acct(self) -> None:
        assert check_payout_method({"type": "stripe_connect", "account_id": "acct_1Nv0FGQ9RKHgCVdK"}).kind == (
            "stripe_connect"
        )
        assert error_of(check_payout_method, {"type": "stripe_connect", "account_id": "cus_123"}).field == "account_id"

    def test_a_missing_field_is_named(self) -> None:
        err = error_of(check_payout_method, {"type": "sepa", "iban": IBAN})
        assert (err.field, err.message) == ("account_holder", "account holder is required")

    def test_an_unknown_type_is_refused(self) -> None:
        err = error_of(check_payout_method, {"type": "bitcoin"})
        assert err.field == "type" and "sepa, ach, paypal, stripe_connect" in err.message


class TestCheckUsTin:
    @pytest.mark.parametrize(
        ("value", "kind"), [("536-90-4399", "ssn"), ("912-90-3456", "itin"), ("04-2103594", "ein")]
    )
    def test_an_ssn_itin_or_ein_is_a_w9_tin(self, value: str, kind: str) -> None:
        assert check_us_tin(value) == (value.replace("-", ""), kind)

    def test_a_number_no_scheme_accepts_is_refused_masked(self) -> None:
        err = error_of(check_us_tin, "000-12-3456")
        assert err.field == "tin" and err.message.endswith("(…3456)") and "000123456" not in err.message

    def test_a_tin_must_have_nine_digits(self) -> None:
        assert "9 digits" in error_of(check_us_tin, "12345").message


class TestCheckVatId:
    def test_a_valid_eu_vat_id_is_accepted_in_compact_form(self) -> None:
        assert check_vat_id("DE 136 695 976") == "DE136695976"

    def test_wrong_check_digits_are_refused_masked(self) -> None:
        err = error_of(check_vat_id, "DE136695977")
        assert err.field == "vat_id" and err.message == "VAT id check digits do not match (DE…5977)"

    def test_a_non_eu_prefix_is_refused(self) -> None:
        assert "EU country" in error_of(check_vat_id, "US123456789").message


class TestCheckCountry:
    def test_an_iso_code_in_any_case_is_accepted(self) -> None:
        assert check_country("de") == "DE"

    @pytest.mark.parametrize("value", ["XX", "DEU", "1"])
    def test_anything_else_is_refused(self, value: str) -> None:
        assert error_of(check_country, value).field == "country"


class TestCheckTaxProfile:
    def test_a_w9_needs_tin_legal_name_and_address(self) -> None:
        checked = check_tax_profile({"form": "w9", "tin": "04-2103594", "legal_name": "Acme Inc", "address": "1 Main"})
        assert checked.masked == {
            "tin": "••••3594",
            "tin_type": "ein",
            "legal_name": "Acme Inc",
            "address": "on file",
            "vat_id": None,
        }
        assert error_of(check_tax_profile, {"form": "w9", "tin": "04-2103594", "legal_name": "A"}).field == "address"

    def test_a_w8ben_is_for_non_us_persons(self) -> None:
        err = error_of(check_tax_profile, {"form": "w8ben", "country": "US", "legal_name": "Jane"})
        assert err.field == "country" and "W-9" in err.message

    def test_a_w8ben_with_a_vat_id_masks_both_numbers(self) -> None:
        checked = check_tax_profile(
            {
                "form": "w8ben",
                "country": "DE",
                "legal_name": "Acme GmbH",
                "foreign_tin": "12/345/67890",
                "vat_id": "DE136695976",
            }
        )
        assert checked.masked["foreign_tin"] == "••••7890" and checked.masked["vat_id"] == "DE•••••5976"
        assert checked.details["vat_id"] == "DE136695976"

    def test_an_unknown_form_is_refused(self) -> None:
        assert error_of(check_tax_profile, {"form": "w8bene"}).field == "form"
