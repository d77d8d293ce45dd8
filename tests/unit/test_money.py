"""Money kit: integer minor units, exact percentages, allocation that never loses a cent, no floats."""

from __future__ import annotations

from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Decimal, localcontext
from fractions import Fraction

import pytest
from babel.numbers import format_currency
from hypothesis import assume, example, given
from hypothesis import strategies as st

from partnerpay.kit.errors import ValidationError
from partnerpay.kit.money import (
    Money,
    Rounding,
    allocate,
    check_currency,
    check_minor_units,
    exponent,
    format_money,
    percent_of,
    round_ratio,
    to_major_string,
)

DECIMAL_MODE = {Rounding.HALF_EVEN: ROUND_HALF_EVEN, Rounding.HALF_UP: ROUND_HALF_UP, Rounding.DOWN: ROUND_DOWN}

BIGINT = 2**63 - 1  # the largest amount the database can hold
amounts = st.integers(min_value=-BIGINT, max_value=BIGINT)
ratio_lists = st.lists(st.integers(min_value=0, max_value=10**6), min_size=1, max_size=12).filter(any)
roundings = st.sampled_from(list(Rounding))
currencies = st.sampled_from(["EUR", "USD", "JPY", "BHD", "KWD", "GBP", "CHF"])


def decimal_reference(numerator: int, denominator: int, rounding: Rounding) -> int:
    """The same division done by the standard library, with precision to spare."""
    with localcontext() as ctx:
        ctx.prec = 80
        exact = Decimal(numerator) / Decimal(denominator)
        return int(exact.quantize(Decimal(1), rounding=DECIMAL_MODE[rounding]))


class TestAllocate:
    @given(total=st.integers(min_value=-(10**12), max_value=10**12), ratios=ratio_lists)
    def test_parts_always_sum_exactly_to_the_total(self, total: int, ratios: list[int]) -> None:
        parts = allocate(total, ratios)

        assert len(parts) == len(ratios)
        assert sum(parts) == total

    @given(total=st.integers(min_value=-(10**12), max_value=10**12), ratios=ratio_lists)
    def test_each_part_is_within_one_minor_unit_of_its_exact_share(self, total: int, ratios: list[int]) -> None:
        weight = sum(ratios)

        for part, ratio in zip(allocate(total, ratios), ratios, strict=True):
            assert abs(Fraction(part) - Fraction(total * ratio, weight)) < 1

    @given(total=st.integers(min_value=-(10**12), max_value=10**12), ratios=ratio_lists)
    def test_a_zero_ratio_always_gets_nothing(self, total: int, ratios: list[int]) -> None:
        parts = allocate(total, [*ratios, 0])

        assert parts[-1] == 0

    @given(total=st.integers(min_value=0, max_value=10**12), ratios=ratio_lists)
    def test_a_negative_total_is_the_mirror_of_the_positive_one(self, total: int, ratios: list[int]) -> None:
        assert allocate(-total, ratios) == [-p for p in allocate(total, ratios)]

    def test_the_remainder_goes_to_the_earliest_parts_on_equal_shares(self) -> None:
        assert allocate(100, [1, 1, 1]) == [34, 33, 33]
        assert allocate(-100, [1, 1, 1]) == [-34, -33, -33]

    def test_the_remainder_goes_to_the_largest_fractional_share_first(self) -> None:
        # Exact shares 1.2, 2.4, 3.6 → floors 1, 2, 3 and one unit left for the .6 share.
        assert allocate(7, [1, 2, 3]) == [1, 2, 4]

    def test_money_allocate_keeps_the_currency_and_the_total(self) -> None:
        parts = Money(1001, "EUR").allocate([1, 1])

        assert parts == [Money(501, "EUR"), Money(500, "EUR")]

    @pytest.mark.parametrize(
        ("total", "ratios", "field"),
        [
            (100, [], "ratios"),
            (100, [0, 0], "ratios"),
            (100, [1, -1], "ratios"),
            (100, [1, 0.5], "ratios"),
            (100, [True, 1], "ratios"),
            (100.0, [1, 1], "total"),
            (True, [1, 1], "total"),
        ],
    )
    def test_invalid_input_is_refused_naming_the_field(self, total: object, ratios: list[object], field: str) -> None:
        with pytest.raises(ValidationError) as info:
            allocate(total, ratios)  # type: ignore[arg-type]

        assert info.value.field == field


class TestPercentOf:
    @given(
        amount=amounts,
        bp=st.integers(min_value=-1_000_000, max_value=1_000_000),
        rounding=roundings,
    )
    # Beyond 2**53 a float cannot even hold the amount: these catch any float in the arithmetic.
    @example(amount=2**53 + 1, bp=10_000, rounding=Rounding.HALF_EVEN)
    @example(amount=9_007_199_254_740_993, bp=5_000, rounding=Rounding.HALF_UP)
    @example(amount=BIGINT, bp=3_333, rounding=Rounding.DOWN)
    @example(amount=-BIGINT, bp=1_250, rounding=Rounding.HALF_EVEN)
    def test_matches_a_decimal_reference_for_every_rounding_mode(
        self, amount: int, bp: int, rounding: Rounding
    ) -> None:
        assert percent_of(amount, bp, rounding) == decimal_reference(amount * bp, 10_000, rounding)

    @given(half=st.integers(min_value=-(10**17), max_value=10**17), rounding=roundings)
    def test_exact_halves_follow_the_rounding_mode(self, half: int, rounding: Rounding) -> None:
        # An odd amount at 50 % is always exactly x.5: the case where the modes disagree.
        amount = 2 * half + 1

        assert percent_of(amount, 5_000, rounding) == decimal_reference(amount * 5_000, 10_000, rounding)

    @pytest.mark.parametrize(
        ("amount", "bp", "rounding", "expected"),
        [
            (5, 1000, Rounding.HALF_EVEN, 0),  # 0.5 → 0
            (15, 1000, Rounding.HALF_EVEN, 2),  # 1.5 → 2
            (25, 1000, Rounding.HALF_EVEN, 2),  # 2.5 → 2
            (5, 1000, Rounding.HALF_UP, 1),
            (-5, 1000, Rounding.HALF_UP, -1),  # half away from zero
            (19, 1000, Rounding.DOWN, 1),
            (-19, 1000, Rounding.DOWN, -1),  # toward zero
            (12345, 1250, Rounding.HALF_EVEN, 1543),  # 1543.125
        ],
    )
    def test_rounds_once_with_the_given_mode(self, amount: int, bp: int, rounding: Rounding, expected: int) -> None:
        assert percent_of(amount, bp, rounding) == expected

    def test_half_even_is_the_default(self) -> None:
        assert percent_of(25, 1000) == 2
        assert percent_of(35, 1000) == 4

    def test_money_percent_keeps_the_currency(self) -> None:
        assert Money(12345, "EUR").percent(bp=1250, rounding=Rounding.HALF_UP) == Money(1543, "EUR")


class TestRoundRatio:
    @given(
        numerator=st.integers(min_value=-(10**18), max_value=10**18),
        denominator=st.integers(min_value=1, max_value=10**9),
        rounding=roundings,
    )
    def test_matches_a_decimal_reference(self, numerator: int, denominator: int, rounding: Rounding) -> None:
        assert round_ratio(numerator, denominator, rounding) == decimal_reference(numerator, denominator, rounding)

    @pytest.mark.parametrize("denominator", [0, -3])
    def test_a_denominator_that_is_not_positive_is_refused(self, denominator: int) -> None:
        with pytest.raises(ValueError, match="denominator"):
            round_ratio(10, denominator)

    @pytest.mark.parametrize(("numerator", "denominator", "field"), [(3.0, 2, "numerator"), (3, 2.0, "denominator")])
    def test_floats_are_refused(self, numerator: object, denominator: object, field: str) -> None:
        with pytest.raises(ValidationError) as info:
            round_ratio(numerator, denominator)  # type: ignore[arg-type]

        assert info.value.field == field


class TestNoFloats:
    @pytest.mark.parametrize("amount", [1.5, 2.0, True, "150", Decimal("1.5"), None])
    def test_money_refuses_anything_but_an_integer_amount(self, amount: object) -> None:
        with pytest.raises(ValidationError) as info:
            Money(amount, "EUR")  # type: ignore[arg-type]

        assert info.value.field == "amount"

    @pytest.mark.parametrize(
        ("amount", "bp", "field"),
        [(100, 12.5, "percent_bp"), (100, True, "percent_bp"), (100.0, 1250, "amount"), (False, 1250, "amount")],
    )
    def test_percent_of_refuses_floats_and_bools(self, amount: object, bp: object, field: str) -> None:
        with pytest.raises(ValidationError) as info:
            percent_of(amount, bp)  # type: ignore[arg-type]

        assert info.value.field == field

    def test_check_minor_units_refuses_a_whole_float_naming_the_field(self) -> None:
        with pytest.raises(ValidationError) as info:
            check_minor_units(2.0)

        assert info.value.field == "amount"
        assert "2.0" in info.value.message

    def test_check_minor_units_names_the_callers_field(self) -> None:
        with pytest.raises(ValidationError) as info:
            check_minor_units(2.0, field="fee")

        assert info.value.field == "fee"

    def test_check_minor_units_refuses_negatives_unless_allowed(self) -> None:
        with pytest.raises(ValidationError):
            check_minor_units(-1)
        assert check_minor_units(-1, allow_negative=True) == -1
        assert check_minor_units(0) == 0

    @pytest.mark.parametrize("amount", [1.5, True])
    def test_to_major_string_and_format_money_refuse_non_integers(self, amount: object) -> None:
        with pytest.raises(ValidationError):
            to_major_string(amount, "EUR")  # type: ignore[arg-type]
        with pytest.raises(ValidationError):
            format_money(amount, "EUR")  # type: ignore[arg-type]

    def test_parse_refuses_a_float_instead_of_a_string(self) -> None:
        with pytest.raises(ValidationError) as info:
            Money.parse(12.34, "EUR")  # type: ignore[arg-type]

        assert info.value.field == "amount"


class TestMoneyArithmetic:
    def test_same_currency_adds_subtracts_negates_and_compares(self) -> None:
        a, b = Money(1250, "EUR"), Money(250, "EUR")

        assert a + b == Money(1500, "EUR")
        assert a - b == Money(1000, "EUR")
        assert b - a == Money(-1000, "EUR")
        assert -a == Money(-1250, "EUR")
        assert b < a
        assert b <= b
        assert not a < b
        assert Money.zero("JPY") == Money(0, "JPY")

    @pytest.mark.parametrize(
        "operation",
        [
            lambda a, b: a + b,
            lambda a, b: a - b,
            lambda a, b: a < b,
            lambda a, b: a <= b,
        ],
        ids=["add", "subtract", "less", "less_or_equal"],
    )
    def test_mixed_currencies_are_refused(self, operation) -> None:  # type: ignore[no-untyped-def]
        with pytest.raises(ValidationError) as info:
            operation(Money(100, "EUR"), Money(100, "USD"))

        assert info.value.field == "currency"
        assert "EUR" in info.value.message
        assert "USD" in info.value.message

    def test_same_amount_in_another_currency_is_not_equal(self) -> None:
        assert Money(100, "EUR") != Money(100, "USD")

    def test_money_is_immutable(self) -> None:
        m = Money(100, "EUR")

        with pytest.raises(AttributeError):
            m.amount = 200  # type: ignore[misc]


class TestCheckCurrency:
    @pytest.mark.parametrize("code", ["EUR", "USD", "JPY", "BHD", "CHF"])
    def test_known_codes_are_returned_unchanged(self, code: str) -> None:
        assert check_currency(code) == code

    @pytest.mark.parametrize("code", ["EURO", "eur", "XXX", "XTS", "", "ZZZ", None, 978])
    def test_unknown_codes_are_refused_naming_the_field(self, code: object) -> None:
        with pytest.raises(ValidationError) as info:
            check_currency(code)

        assert info.value.field == "currency"

    def test_the_callers_field_name_is_used(self) -> None:
        with pytest.raises(ValidationError) as info:
            check_currency("eur", field="payout_currency")

        assert info.value.field == "payout_currency"

    @pytest.mark.parametrize("code", ["EURO", "eur", "XXX"])
    def test_money_refuses_an_unknown_currency(self, code: str) -> None:
        with pytest.raises(ValidationError) as info:
            Money(100, code)

        assert info.value.field == "currency"


class TestExponent:
    @pytest.mark.parametrize(
        ("code", "digits"), [("JPY", 0), ("KRW", 0), ("EUR", 2), ("USD", 2), ("BHD", 3), ("KWD", 3)]
    )
    def test_comes_from_the_currency_data(self, code: str, digits: int) -> None:
        assert exponent(code) == digits

    def test_unknown_currency_is_refused(self) -> None:
        with pytest.raises(ValidationError):
            exponent("EURO")


class TestParse:
    @pytest.mark.parametrize(
        ("text", "currency", "expected"),
        [
            ("12.34", "EUR", 1234),
            ("12.3", "EUR", 1230),
            ("12", "EUR", 1200),
            (" 0.05 ", "EUR", 5),
            ("-12.34", "EUR", -1234),
            ("1250", "JPY", 1250),
            ("1.234", "BHD", 1234),
            ("0", "EUR", 0),
        ],
    )
    def test_major_units_become_minor_units(self, text: str, currency: str, expected: int) -> None:
        assert Money.parse(text, currency) == Money(expected, currency)

    @pytest.mark.parametrize(
        ("text", "currency"),
        [
            ("12.345", "EUR"),
            ("0.001", "EUR"),
            ("1250.5", "JPY"),
            ("1.2345", "BHD"),
            # 29 significant digits: must not be rounded to 1.00 by a 28-digit Decimal context.
            ("1.0000000000000000000000000001", "EUR"),
        ],
    )
    def test_more_decimals_than_the_currency_has_is_refused(self, text: str, currency: str) -> None:
        with pytest.raises(ValidationError) as info:
            Money.parse(text, currency)

        assert info.value.field == "amount"

    @pytest.mark.parametrize("text", ["", "abc", "12,34", "1.2.3", "NaN", "Infinity", "-inf", "1e999999999"])
    def test_text_that_is_not_a_usable_amount_is_refused(self, text: str) -> None:
        with pytest.raises(ValidationError) as info:
            Money.parse(text, "EUR")

        assert info.value.field == "amount"

    def test_unknown_currency_is_refused(self) -> None:
        with pytest.raises(ValidationError) as info:
            Money.parse("12.34", "eur")

        assert info.value.field == "currency"

    @given(amount=st.integers(min_value=-(10**17), max_value=10**17), currency=currencies)
    def test_parses_back_what_to_major_string_wrote(self, amount: int, currency: str) -> None:
        assert Money.parse(to_major_string(amount, currency), currency) == Money(amount, currency)

    @given(
        amount=st.integers(min_value=-(10**15), max_value=10**15),
        currency=currencies,
        extra=st.integers(min_value=1, max_value=9),
    )
    def test_one_more_significant_decimal_is_always_refused(self, amount: int, currency: str, extra: int) -> None:
        text = to_major_string(amount, currency)
        text += f"{extra}" if "." in text else f".{extra}"

        with pytest.raises(ValidationError):
            Money.parse(text, currency)


class TestToMajorString:
    @pytest.mark.parametrize(
        ("amount", "currency", "expected"),
        [
            (1234, "EUR", "12.34"),
            (5, "EUR", "0.05"),
            (-5, "EUR", "-0.05"),
            (0, "EUR", "0.00"),
            (-123456, "USD", "-1234.56"),
            (1250, "JPY", "1250"),
            (-1250, "JPY", "-1250"),
            (1, "BHD", "0.001"),
            # Beyond the 28 digits of the default Decimal context: still exact.
            (10**30 + 1, "EUR", "10000000000000000000000000000.01"),
        ],
    )
    def test_writes_plain_major_units(self, amount: int, currency: str, expected: str) -> None:
        assert to_major_string(amount, currency) == expected

    @given(amount=st.integers(min_value=-(10**40), max_value=10**40), currency=currencies)
    def test_is_the_amount_with_a_point_before_the_minor_digits(self, amount: int, currency: str) -> None:
        text = to_major_string(amount, currency)
        digits = exponent(currency)

        assert int(text.replace(".", "")) == amount
        if digits:
            assert len(text.rsplit(".", 1)[1]) == digits
        else:
            assert "." not in text


class TestFormatMoney:
    @pytest.mark.parametrize(
        ("amount", "currency", "expected"),
        [
            (1234, "EUR", "€12.34"),
            (-1234, "EUR", "-€12.34"),
            (120000, "USD", "$1,200.00"),
            (-1250, "JPY", "-¥1,250"),
        ],
    )
    def test_formats_with_symbol_and_grouping_in_en_us(self, amount: int, currency: str, expected: str) -> None:
        assert format_money(amount, currency) == expected

    def test_shows_the_code_when_there_is_no_symbol(self) -> None:
        text = format_money(-1234, "BHD")

        assert "BHD" in text
        assert text.startswith("-")
        assert "1.234" in text

    def test_other_locales_format_their_own_way(self) -> None:
        text = format_money(-123456, "EUR", "de_DE")

        assert text.startswith("-")
        assert "1.234,56" in text
        assert "€" in text

    @given(amount=st.integers(min_value=-(10**15), max_value=10**15), currency=currencies)
    def test_negatives_are_shown_as_negative_with_the_exact_digits(self, amount: int, currency: str) -> None:
        assume(amount != 0)
        text = format_money(amount, currency)

        assert text.startswith("-") == (amount < 0)
        assert "(" not in text
        assert to_major_string(abs(amount), currency) in text.replace(",", "")

    def test_money_format_is_format_money(self) -> None:
        assert Money(-1234, "EUR").format() == format_money(-1234, "EUR")


class TestFormatMoneyShape:
    """format_money learns Babel's shape per currency and locale; it must always say exactly what Babel says."""

    @given(
        amount=st.integers(-(10**15), 10**15),
        currency=st.sampled_from(["EUR", "USD", "JPY", "BHD", "CHF", "INR", "GBP", "SEK", "KWD", "CLP"]),
        locale=st.sampled_from(["en_US", "de_DE", "fr_FR", "en_IN", "ja_JP", "de_CH", "ar_EG", "sv_SE", "nl_NL"]),
    )
    def test_the_fast_path_says_what_babel_says(self, amount: int, currency: str, locale: str) -> None:
        expected = str(format_currency(Decimal(to_major_string(amount, currency)), currency, locale=locale))
        assert format_money(amount, currency, locale) == expected
