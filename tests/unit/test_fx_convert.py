"""Conversion between currencies of different exponents: exact integers, rounded once, explained."""

from __future__ import annotations

from datetime import date
from fractions import Fraction

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from partnerpay.fx.conversion import FxRate, convert, parse_rate, rate_text
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.money import Rounding, exponent

DAY = date(2026, 3, 2)


def rate(base: str, quote: str, text: str, *, inverted: bool = False, source: str = "ECB reference rate") -> FxRate:
    units, scale = parse_rate(text)
    return FxRate("fxr_test", base, quote, units, scale, DAY, source, inverted)


class TestParseRate:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [("1.0842", (10842, 4)), ("163", (163, 0)), ("0.0061", (61, 4)), ("1.50", (15, 1)), ("0.0000000001", (1, 10)),
         (" 2.5 ", (25, 1)), ("1.08420000000000", (10842, 4))],
    )  # fmt: skip
    def test_a_decimal_string_is_kept_exactly_as_two_integers(self, text: str, expected: tuple[int, int]) -> None:
        assert parse_rate(text) == expected

    @pytest.mark.parametrize("value", [1.0842, 1, True, None, ["1.1"]])
    def test_anything_but_a_string_is_refused_naming_the_field(self, value: object) -> None:
        with pytest.raises(ValidationError, match="decimal string") as err:
            parse_rate(value, field="rates.0.rate")
        assert err.value.field == "rates.0.rate"

    @pytest.mark.parametrize(
        ("text", "message"),
        [("0", "greater than zero"), ("0.000", "greater than zero"), ("-1.2", "plain positive decimal"),
         ("1e3", "plain positive decimal"), ("1,08", "plain positive decimal"), ("NaN", "plain positive decimal"),
         ("", "plain positive decimal"), ("0.00000000001", "11 decimal places"), ("100000000", "too large")],
    )  # fmt: skip
    def test_a_bad_rate_says_what_is_wrong(self, text: str, message: str) -> None:
        with pytest.raises(ValidationError, match=message):
            parse_rate(text)

    def test_rate_text_writes_the_decimal_back(self) -> None:
        assert [rate_text(10842, 4), rate_text(61, 4), rate_text(163, 0), rate_text(1, 10)] == [
            "1.0842", "0.0061", "163", "0.0000000001"]  # fmt: skip


class TestWorkedExamples:
    def test_eur_to_usd_to_the_cent(self) -> None:
        result = convert(120_000, "EUR", "USD", rate("EUR", "USD", "1.0842"))
        assert (result.amount, result.currency, result.rate_text, result.inverted) == (130_104, "USD", "1.0842", False)
        assert result.explain() == "€1,200.00 at 1 EUR = 1.0842 USD (ECB reference rate, 2 Mar 2026) = $1,301.04"

    def test_jpy_without_decimals_to_eur_cents(self) -> None:
        result = convert(150_000, "JPY", "EUR", rate("JPY", "EUR", "0.0061"))
        assert (result.amount, result.currency) == (91_500, "EUR")
        assert result.explain() == "¥150,000 at 1 JPY = 0.0061 EUR (ECB reference rate, 2 Mar 2026) = €915.00"

    def test_usd_to_bhd_with_three_decimals(self) -> None:
        # $99.99 * 0.376 = 37.59624 BHD → 37.596 (fils)
        result = convert(9_999, "USD", "BHD", rate("USD", "BHD", "0.376"))
        assert (result.amount, result.currency) == (37_596, "BHD")

    def test_eur_to_jpy_rounds_half_even_once(self) -> None:
        # €0.05 * 150 = ¥7.5 → 8 (half to even), ¥6.5 → 6
        assert convert(5, "EUR", "JPY", rate("EUR", "JPY", "150")).amount == 8
        assert convert(5, "EUR", "JPY", rate("EUR", "JPY", "130")).amount == 6
        assert convert(5, "EUR", "JPY", rate("EUR", "JPY", "130"), Rounding.HALF_UP).amount == 7
        assert convert(5, "EUR", "JPY", rate("EUR", "JPY", "139"), Rounding.DOWN).amount == 6

    def test_an_inverted_rate_divides_by_the_recorded_rate(self) -> None:
        # Stored 1 EUR = 163.93 JPY; ¥150,000 / 163.93 = €915.0247... → €915.02
        result = convert(150_000, "JPY", "EUR", rate("EUR", "JPY", "163.93", inverted=True))
        assert (result.amount, result.inverted, result.rate_text) == (91_502, True, "163.93")
        assert result.explain() == "¥150,000 at 1 EUR = 163.93 JPY (ECB reference rate, 2 Mar 2026) = €915.02"

    def test_negative_amounts_convert_symmetrically(self) -> None:
        assert convert(-120_000, "EUR", "USD", rate("EUR", "USD", "1.0842")).amount == -130_104

    def test_the_same_currency_needs_no_rate(self) -> None:
        result = convert(1234, "EUR", "EUR", None)
        assert (result.amount, result.rate_id) == (1234, None)
        assert result.explain() == "€12.34 (no conversion needed) = €12.34"

    def test_a_rate_of_another_pair_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="needs a JPY→EUR rate, got EUR→USD"):
            convert(1, "JPY", "EUR", rate("EUR", "USD", "1.1"))
        with pytest.raises(ValidationError, match="needs a EUR→USD rate, got no rate"):
            convert(1, "EUR", "USD", None)

    def test_a_float_amount_is_refused(self) -> None:
        with pytest.raises(ValidationError, match="integer number of minor units"):
            convert(12.5, "EUR", "USD", rate("EUR", "USD", "1.1"))  # type: ignore[arg-type]


CURRENCIES = ["EUR", "USD", "JPY", "BHD", "GBP", "KRW", "KWD", "CHF"]


@st.composite
def invertible_rates(draw: st.DrawFn) -> tuple[str, str]:
    """A rate 2**i * 5**j / 10**k and its exact inverse, both with at most 10 decimal places and below 10**8."""
    i, j, k = draw(st.integers(0, 10)), draw(st.integers(0, 10)), draw(st.integers(0, 10))
    forward = Fraction(2**i * 5**j, 10**k)
    back = 1 / forward
    texts = []
    for value in (forward, back):
        places = next((p for p in range(11) if (value * 10**p).denominator == 1), None)
        assume(places is not None)
        assert places is not None
        assume(value < 10**8)  # the largest rate parse_rate accepts
        units = int(value * 10**places)
        texts.append(rate_text(units, places))
    return texts[0], texts[1]


class TestProperties:
    @given(
        amount=st.integers(-(10**12), 10**12),
        pair=st.lists(st.sampled_from(CURRENCIES), min_size=2, max_size=2, unique=True),
        rates=invertible_rates(),
        rounding=st.sampled_from(list(Rounding)),
    )
    def test_there_and_back_stays_within_the_rounding_of_each_leg(
        self, amount: int, pair: list[str], rates: tuple[str, str], rounding: Rounding
    ) -> None:
        source, target = pair
        forward_text, back_text = rates
        there = convert(amount, source, target, rate(source, target, forward_text), rounding)
        back = convert(there.amount, target, source, rate(target, source, back_text), rounding)
        assert type(there.amount) is int and type(back.amount) is int
        # Each leg rounds by at most one minor unit of its target (half a unit unless rounding down); the first
        # leg's error, brought back, is scaled by how many source minor units one target minor unit is worth.
        worth = Fraction(1, 1) / (parse_fraction(forward_text) * 10 ** (exponent(target) - exponent(source)))
        leg = Fraction(1) if rounding is Rounding.DOWN else Fraction(1, 2)
        assert abs(back.amount - amount) <= leg + leg * worth
        if worth <= 1:  # the target currency is at least as fine as the source: within one minor unit
            assert abs(back.amount - amount) <= (1 if rounding is not Rounding.DOWN else 2)

    @given(
        amount=st.integers(-(10**12), 10**12),
        pair=st.lists(st.sampled_from(CURRENCIES), min_size=2, max_size=2, unique=True),
        units=st.integers(1, 10**12),
        scale=st.integers(0, 10),
        inverted=st.booleans(),
    )
    def test_the_result_is_the_exact_fraction_rounded_once(
        self, amount: int, pair: list[str], units: int, scale: int, inverted: bool
    ) -> None:
        source, target = pair
        stored = FxRate("fxr_x", target if inverted else source, source if inverted else target, units, scale, DAY,
                        "manual", inverted)  # fmt: skip
        result = convert(amount, source, target, stored)
        value = Fraction(units, 10**scale)
        exact = Fraction(amount, 10 ** exponent(source)) * (1 / value if inverted else value) * 10 ** exponent(target)
        assert type(result.amount) is int
        assert abs(result.amount - exact) <= Fraction(1, 2)
        assert result.amount == round(exact)  # Python's round of a Fraction is half-to-even


def parse_fraction(text: str) -> Fraction:
    units, scale = parse_rate(text)
    return Fraction(units, 10**scale)
