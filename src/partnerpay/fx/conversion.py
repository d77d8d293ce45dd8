"""Exact conversion of minor units between currencies with a recorded rate: integers only, rounded once.

A rate "1 EUR = 1.0842 USD" is held as two integers (10842, 4). Converting a EUR amount of `a` cents to
USD cents is a * 10842 * 10**2 / (10**4 * 10**2), one integer division rounded by kit.money.round_ratio;
the exponents of both currencies (JPY 0, EUR 2, BHD 3) enter the same fraction, so nothing is rounded
before the end and no float or Decimal context is involved.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from partnerpay.kit.errors import ValidationError
from partnerpay.kit.money import Rounding, check_currency, check_minor_units, exponent, format_money, round_ratio

MAX_RATE_DECIMALS = 10
# rate_units is a BIGINT: rates below 10**8 with at most 10 decimals stay below 10**18 units.
_MAX_RATE = 10**8
_RATE_TEXT = re.compile(r"^(\d+)(?:\.(\d+))?$")


def parse_rate(value: object, *, field: str = "rate") -> tuple[int, int]:
    """A positive decimal string ("1.0842") as (units, scale) with trailing zeros dropped; floats are refused
    because 1.0842 as a binary float is not 1.0842."""
    if isinstance(value, bool) or not isinstance(value, str):
        kind = "a number" if isinstance(value, int | float) else type(value).__name__
        raise ValidationError(
            f'{field} must be a decimal string such as "1.0842", not {kind} ({value!r}): a JSON number may lose digits',
            field=field,
        )
    match = _RATE_TEXT.match(value.strip())
    if match is None:
        raise ValidationError(f'{field} must be a plain positive decimal such as "1.0842", got {value!r}', field=field)
    whole, fraction = match.group(1), (match.group(2) or "").rstrip("0")
    if len(fraction) > MAX_RATE_DECIMALS:
        raise ValidationError(
            f"{field} has {len(fraction)} decimal places; at most {MAX_RATE_DECIMALS} are kept, got {value!r}",
            field=field,
        )
    units = int(whole + fraction)
    if units == 0:
        raise ValidationError(f"{field} must be greater than zero, got {value!r}", field=field)
    if int(whole) >= _MAX_RATE:
        raise ValidationError(f"{field} {value!r} is too large to be a currency rate (below {_MAX_RATE})", field=field)
    return units, len(fraction)


def rate_text(units: int, scale: int) -> str:
    """(10842, 4) → "1.0842"; (163, 0) → "163"."""
    if scale == 0:
        return str(units)
    whole, fraction = divmod(units, 10**scale)
    return f"{whole}.{fraction:0{scale}d}"


@dataclass(frozen=True, slots=True)
class FxRate:
    """A recorded rate as it applies to one direction of conversion.

    The stored row says 1 `base` = units/10**scale `quote`. `inverted` means the conversion runs the other
    way (quote → base), dividing by the recorded rate instead of multiplying; the rate itself is never
    rewritten as a rounded 1/r.
    """

    id: str
    base: str
    quote: str
    units: int
    scale: int
    rate_date: date
    source: str
    inverted: bool = False

    @property
    def text(self) -> str:
        return rate_text(self.units, self.scale)

    @property
    def from_currency(self) -> str:
        return self.quote if self.inverted else self.base

    @property
    def to_currency(self) -> str:
        return self.base if self.inverted else self.quote

    def describe(self) -> str:
        """'1 EUR = 1.0842 USD (ECB reference rate, 2 Mar 2026)', always as recorded, never a rounded inverse."""
        day = f"{self.rate_date.day} {self.rate_date:%b %Y}"
        return f"1 {self.base} = {self.text} {self.quote} ({self.source}, {day})"


@dataclass(frozen=True, slots=True)
class Converted:
    """The result of a conversion and everything needed to cite it on a commission line."""

    amount: int
    currency: str
    rate_id: str | None  # None only when no conversion was needed (same currency)
    rate_text: str  # the recorded rate, "1.0842" (of base→quote; see `inverted`)
    inverted: bool
    from_amount: int
    from_currency: str
    rounding: Rounding
    rate: FxRate | None = None

    def explain(self, locale: str = "en_US") -> str:
        """'¥150,000 at 1 JPY = 0.0061 EUR (ECB reference rate, 2 Mar 2026) = €915.00'."""
        source = format_money(self.from_amount, self.from_currency, locale)
        result = format_money(self.amount, self.currency, locale)
        if self.rate is None:
            return f"{source} (no conversion needed) = {result}"
        return f"{source} at {self.rate.describe()} = {result}"


def convert(
    amount: int, from_ccy: str, to_ccy: str, rate: FxRate | None, rounding: Rounding = Rounding.HALF_EVEN
) -> Converted:
    """`amount` minor units of from_ccy in minor units of to_ccy, rounded once with `rounding`.

    `rate` comes from service.rate_for(...) and must run from_ccy → to_ccy (directly or inverted); it may
    be None only when both currencies are the same.
    """
    check_minor_units(amount, allow_negative=True)
    check_currency(from_ccy, field="from")
    check_currency(to_ccy, field="to")
    rounding = Rounding(rounding)
    if from_ccy == to_ccy:
        return Converted(amount, to_ccy, None, "1", False, amount, from_ccy, rounding)
    if rate is None or (rate.from_currency, rate.to_currency) != (from_ccy, to_ccy):
        have = f"{rate.from_currency}→{rate.to_currency}" if rate else "no rate"
        raise ValidationError(f"converting {from_ccy}→{to_ccy} needs a {from_ccy}→{to_ccy} rate, got {have}",
                              field="rate")  # fmt: skip
    shift = 10 ** exponent(to_ccy)
    unshift = 10 ** exponent(from_ccy)
    if rate.inverted:
        # amount / (units / 10**scale): multiply by 10**scale, divide by units.
        numerator, denominator = amount * 10**rate.scale * shift, rate.units * unshift
    else:
        numerator, denominator = amount * rate.units * shift, 10**rate.scale * unshift
    result = round_ratio(numerator, denominator, rounding)
    return Converted(result, to_ccy, rate.id, rate.text, rate.inverted, amount, from_ccy, rounding, rate)
