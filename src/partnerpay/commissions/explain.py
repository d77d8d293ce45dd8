"""Plain-language explanations: every line says where its amount came from."""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache

from partnerpay.kit.money import format_money


@lru_cache(maxsize=1_024)
def percent_text(bp: int) -> str:
    """2000 → "20 %", 1250 → "12.5 %", 1 → "0.01 %" (no float involved)."""
    whole, frac = divmod(bp, 100)
    return f"{whole} %" if frac == 0 else f"{whole}.{frac:02d}".rstrip("0") + " %"


# A replay explains a million lines: the same amounts (flat fees, invoice prices) and days come back again and
# again, and formatting them is a good part of a line's cost. Bounded, so a long-running process stays small.
@lru_cache(maxsize=16_384)
def money_text(amount: int, currency: str) -> str:
    """format_money in the default locale, remembered."""
    return format_money(amount, currency)


@lru_cache(maxsize=4_096)
def _day_text(day: int) -> str:
    return date.fromordinal(day).strftime("%d %b %Y")


def hold_text(hold_until: datetime, hold_days: int) -> str:
    """ "on hold until 15 Feb 2026 (refund window 30 days)": the day as `hold_until` has it (its own zone)."""
    return f"on hold until {_day_text(hold_until.toordinal())} (refund window {hold_days} days)"


def commission_explanation(
    *,
    bp: int,
    base: int,
    currency: str,
    event_external_id: str,
    customer_external_id: str,
    result: int,
    rounding: str,
    hold_until: datetime,
    hold_days: int,
    converted: str | None = None,
    attributed: tuple[str, str | None] | None = None,
) -> str:
    """`converted` says the invoice's own amount and the rate, when it was in another currency than the program's;
    `attributed` (partner name, reason) why the customer is the partner's (with_attribution)."""
    conversion = f" (converted: {converted})" if converted else ""
    # Formatted through the caches above: a batch ingest explains thousands of lines of a few amounts and days.
    text = (
        f"{percent_text(bp)} of {money_text(base, currency)} invoice {event_external_id} "
        f"for customer {customer_external_id}{conversion} (program default rate, rounded {rounding.replace('_', '-')}) "
        f"= {money_text(result, currency)}; {hold_text(hold_until, hold_days)}"
    )
    if attributed is None:
        return text
    return with_attribution(text, partner_name=attributed[0], reason=attributed[1])


def clawback_explanation(
    *,
    kind: str,
    refund_external_id: str,
    refunded: int,
    refunded_total: int,
    original_amount: int,
    currency: str,
    original_line_id: str,
    original_line_amount: int,
    result: int,
    chosen_newest_first: bool,
    line_currency: str | None = None,
) -> str:
    """`currency` is the refund's and its payment's; `line_currency` the lines' (the program's), when an event in
    another currency was converted to earn them."""
    line_currency = line_currency or currency
    share = (
        "in full"
        if refunded_total == original_amount
        else f"{format_money(refunded_total, currency)} of {format_money(original_amount, currency)} so far"
    )
    how = " (no original given: applied to the customer's paid events, newest first)" if chosen_newest_first else ""
    return (
        f"{kind.replace('_', ' ').capitalize()} {refund_external_id} took back {format_money(refunded, currency)} "
        f"({share}){how}; claws back {format_money(-result, line_currency)} of line {original_line_id} "
        f"({format_money(original_line_amount, line_currency)}) = {format_money(result, line_currency)}"
    )


def with_attribution(explanation: str, *, partner_name: str, reason: str | None) -> str:
    """The line's explanation plus why its customer belongs to the partner (the attribution decision)."""
    if not reason:
        return explanation
    return f"{explanation}. Attributed to {partner_name}: {reason}"
