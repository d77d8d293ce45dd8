"""Money as integer minor units plus an ISO 4217 code; floats are refused everywhere."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import MAX_EMAX, MIN_EMIN, ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal
from enum import StrEnum
from functools import lru_cache

from babel.numbers import format_currency, get_currency_precision, list_currencies

from partnerpay.kit.errors import ValidationError

BP_PER_UNIT = 10_000  # 1 basis point = 0.01 %
# Amounts are stored as BIGINT: anything of 10**19 minor units or more cannot be a real amount.
_MAX_MINOR_DIGITS = 19


class Rounding(StrEnum):
    HALF_EVEN = "half_even"
    HALF_UP = "half_up"
    DOWN = "down"

    @property
    def decimal_mode(self) -> str:
        return {"half_even": ROUND_HALF_EVEN, "half_up": ROUND_HALF_UP, "down": ROUND_DOWN}[self.value]


@lru_cache(maxsize=1)
def _known_currencies() -> frozenset[str]:
    # XXX (no currency) and XTS (testing) are in ISO 4217 but never a real payout currency.
    return frozenset(list_currencies()) - {"XXX", "XTS"}


def check_currency(code: object, *, field: str = "currency") -> str:
    """Return the code if it is a known ISO 4217 currency in upper case, else raise naming the field."""
    if not isinstance(code, str) or code not in _known_currencies():
        raise ValidationError(f"unknown currency {code!r}: use an ISO 4217 code such as EUR", field=field)
    return code


def exponent(currency: str) -> int:
    """Number of minor-unit digits (EUR 2, JPY 0, BHD 3), from Babel's CLDR data, never hand-typed."""
    return int(get_currency_precision(check_currency(currency)))


# Members read once: Enum attribute access costs a descriptor call on Python 3.11, and rounding runs per line.
_DOWN, _HALF_UP = Rounding.DOWN, Rounding.HALF_UP


def check_minor_units(value: object, *, field: str = "amount", allow_negative: bool = False) -> int:
    """Accept only a true integer (not bool, not float, not a numeric string)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValidationError(f"{field} must be an integer number of minor units, got {value!r}", field=field)
    if value < 0 and not allow_negative:
        raise ValidationError(f"{field} must not be negative, got {value}", field=field)
    return value


@dataclass(frozen=True, slots=True)
class Money:
    amount: int
    currency: str

    def __post_init__(self) -> None:
        check_minor_units(self.amount, allow_negative=True)
        check_currency(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        return cls(0, currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        """Parse a decimal string in major units ("12.34"); more digits than the currency has is an error."""
        if not isinstance(text, str):
            raise ValidationError(f"amount must be a decimal string such as '12.34', got {text!r}", field="amount")
        places = exponent(currency)
        try:
            value = Decimal(text.strip())
        except ArithmeticError as exc:
            raise ValidationError(f"not a decimal amount: {text!r}", field="amount") from exc
        if not value.is_finite():
            raise ValidationError(f"not a decimal amount: {text!r}", field="amount")
        if value and value.adjusted() + places >= _MAX_MINOR_DIGITS:
            raise ValidationError(f"{text} is too large an amount of {currency}", field="amount")
        # Scale with as many digits as the input has: the default 28-digit context would round a
        # long input ("1.0000000000000000000000000001") to an integral value and accept it.
        exact = Context(prec=max(28, len(value.as_tuple().digits)), Emax=MAX_EMAX, Emin=MIN_EMIN)
        scaled = value.scaleb(places, context=exact)
        if scaled != scaled.to_integral_value(context=exact):
            raise ValidationError(f"{text} has more decimals than {currency} allows ({places})", field="amount")
        return cls(int(scaled), currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise ValidationError(
                f"cannot combine {self.currency} and {other.currency} without an exchange rate",
                field="currency",
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def percent(self, *, bp: int, rounding: Rounding = Rounding.HALF_EVEN) -> Money:
        """This amount times bp/10,000, rounded once with the given mode."""
        return Money(percent_of(self.amount, bp, rounding), self.currency)

    def allocate(self, ratios: Sequence[int]) -> list[Money]:
        return [Money(part, self.currency) for part in allocate(self.amount, ratios)]

    def format(self, locale: str = "en_US") -> str:
        return format_money(self.amount, self.currency, locale)


def percent_of(amount: int, bp: int, rounding: Rounding = Rounding.HALF_EVEN) -> int:
    """amount * bp / 10,000 in exact integer arithmetic, rounded once."""
    # A plain int passes at the cost of one type() test (a replay computes this for every line); anything
    # else gets check_minor_units' verdict and message.
    if type(amount) is not int:
        check_minor_units(amount, allow_negative=True)
    if type(bp) is not int:
        check_minor_units(bp, field="percent_bp", allow_negative=True)
    return _rounded(amount * bp, BP_PER_UNIT, rounding)


def round_ratio(numerator: int, denominator: int, rounding: Rounding = Rounding.HALF_EVEN) -> int:
    """numerator / denominator rounded to an integer, with no float and no Decimal context surprises."""
    if type(numerator) is not int:
        check_minor_units(numerator, field="numerator", allow_negative=True)
    if type(denominator) is not int:
        check_minor_units(denominator, field="denominator", allow_negative=True)
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    return _rounded(numerator, denominator, rounding)


def _rounded(numerator: int, denominator: int, rounding: Rounding) -> int:
    quotient, remainder = divmod(abs(numerator), denominator)
    if remainder == 0 or rounding is _DOWN:
        up = False
    elif (twice := 2 * remainder) != denominator:
        up = twice > denominator
    else:
        up = rounding is _HALF_UP or quotient % 2 == 1
    if up:
        quotient += 1
    return -quotient if numerator < 0 else quotient


def allocate(total: int, ratios: Sequence[int]) -> list[int]:
    """Split total by ratios; the parts always sum to total, the remainder goes to the largest shares first."""
    check_minor_units(total, field="total", allow_negative=True)
    if not ratios or any(isinstance(r, bool) or not isinstance(r, int) or r < 0 for r in ratios):
        raise ValidationError("ratios must be non-negative integers", field="ratios")
    weight = sum(ratios)
    if weight == 0:
        raise ValidationError("ratios must not all be zero", field="ratios")
    sign = -1 if total < 0 else 1
    magnitude = abs(total)
    parts = [magnitude * r // weight for r in ratios]
    leftover = magnitude - sum(parts)
    # Largest fractional remainder first, ties by position, so the result is deterministic.
    order = sorted(range(len(ratios)), key=lambda i: (-(magnitude * ratios[i] % weight), i))
    for i in order[:leftover]:
        parts[i] += 1
    return [sign * p for p in parts]


def format_money(amount: int, currency: str, locale: str = "en_US") -> str:
    """Locale-formatted amount with its currency, e.g. €1,200.00 or -¥1,250."""
    check_minor_units(amount, allow_negative=True)
    shape = _money_shape(currency, locale)
    if shape is None:
        return _babel_money(amount, currency, locale)
    return shape.render(amount)


def _babel_money(amount: int, currency: str, locale: str) -> str:
    return str(format_currency(Decimal(to_major_string(amount, currency)), currency, locale=locale))


@dataclass(frozen=True, slots=True)
class _MoneyShape:
    """Babel's text for a currency and locale, learned once: what comes before and after the digits, and
    the separators. Babel parses its pattern on every call (half the time of a commission explanation)."""

    digits: int
    group: str
    decimal: str
    before: tuple[str, str]  # (positive, negative)
    after: tuple[str, str]

    def number(self, amount: int) -> str:
        units, minor = divmod(abs(amount), 10**self.digits)
        grouped = f"{units:,}".replace(",", self.group)
        return f"{grouped}{self.decimal}{minor:0{self.digits}d}" if self.digits else grouped

    def render(self, amount: int) -> str:
        k = 1 if amount < 0 else 0
        return f"{self.before[k]}{self.number(amount)}{self.after[k]}"


@lru_cache(maxsize=512)
def _money_shape(currency: str, locale: str) -> _MoneyShape | None:
    """The shape of Babel's output, or None (Babel every time) when the locale groups other than by
    thousands or the learned shape does not reproduce Babel exactly on a few probes."""
    from babel.numbers import get_decimal_symbol, get_group_symbol

    digits = exponent(currency)
    shape = _MoneyShape(digits, get_group_symbol(locale=locale), get_decimal_symbol(locale=locale), ("", ""), ("", ""))
    sides: list[tuple[str, str]] = []
    for probe in (123_456_789_012, -123_456_789_012):
        text, number = _babel_money(probe, currency, locale), shape.number(probe)
        if text.count(number) != 1:
            return None
        before, after = text.split(number)
        sides.append((before, after))
    shape = _MoneyShape(
        shape.digits, shape.group, shape.decimal, (sides[0][0], sides[1][0]), (sides[0][1], sides[1][1])
    )
    probes = (0, 1, -1, 5, 999, 1_000, -1_234_567, 10**15 + 7)
    return shape if all(shape.render(p) == _babel_money(p, currency, locale) for p in probes) else None


def to_major_string(amount: int, currency: str) -> str:
    """Plain decimal string in major units ("12.34"), used in bank files and CSV exports."""
    check_minor_units(amount, allow_negative=True)
    digits = exponent(currency)
    # Integer arithmetic: Decimal.scaleb would round amounts beyond 28 digits in the default context.
    units, minor = divmod(abs(amount), 10**digits)
    sign = "-" if amount < 0 else ""
    return f"{sign}{units}.{minor:0{digits}d}" if digits else f"{sign}{units}"
