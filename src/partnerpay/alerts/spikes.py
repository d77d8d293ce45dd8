"""The spike test in integers: is today's count above the trailing daily average times a factor?

    today > (trailing_total / days) * (factor_pct / 100)   ⇔   today * days * 100 > trailing_total * factor_pct

Cross-multiplied so that no division (and no float) is ever made; a minimum count keeps a quiet partner's
jump from 0 to 2 clicks from counting as a spike.
"""

from __future__ import annotations

TRAILING_DAYS = 28


def is_spike(today: int, trailing_total: int, *, factor_pct: int, min_count: int, days: int = TRAILING_DAYS) -> bool:
    if today < 0 or trailing_total < 0 or days < 1 or factor_pct < 0:
        raise ValueError("counts, days and the factor are never negative")
    return today >= min_count and today * days * 100 > trailing_total * factor_pct


def average_text(trailing_total: int, days: int = TRAILING_DAYS) -> str:
    """The trailing daily average to one decimal, for the alert's words (rounded half up, in integers)."""
    tenths = (trailing_total * 10 * 2 + days) // (2 * days)
    return f"{tenths // 10}.{tenths % 10}"
