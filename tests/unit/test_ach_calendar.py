"""Federal Reserve banking days for a NACHA file's effective entry date."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from partnerpay.payouts.exporters.ach_calendar import is_banking_day, next_banking_day


@pytest.mark.parametrize(
    ("sent", "settles", "why"),
    [
        (date(2026, 1, 14), date(2026, 1, 15), "Wednesday → Thursday"),
        (date(2026, 1, 16), date(2026, 1, 20), "Friday → Tuesday: Monday 19 Jan is Martin Luther King Jr. Day"),
        (date(2026, 11, 25), date(2026, 11, 27), "Thanksgiving Thursday closed, Friday open"),
        (date(2026, 7, 2), date(2026, 7, 3), "4 July 2026 is a Saturday: the Fed stays open on Friday 3 July"),
        (date(2027, 12, 24), date(2027, 12, 27), "Christmas on Saturday: Monday is open"),
        (date(2028, 1, 14), date(2028, 1, 18), "Friday → Tuesday (MLK Day Monday 17 Jan 2028)"),
        (date(2027, 7, 2), date(2027, 7, 6), "4 July 2027 is a Sunday: the Fed closes Monday 5 July"),
        (date(2026, 12, 31), date(2027, 1, 4), "New Year's Day Friday, then the weekend"),
    ],
)
def test_worked_dates(sent: date, settles: date, why: str) -> None:
    assert next_banking_day(sent) == settles, why


@given(st.dates(min_value=date(2024, 1, 1), max_value=date(2035, 12, 31)))
def test_the_next_banking_day_is_the_first_open_day_after(day: date) -> None:
    found = next_banking_day(day)
    assert found > day and is_banking_day(found) and found.weekday() < 5
    assert all(not is_banking_day(day + timedelta(days=n)) for n in range(1, (found - day).days))
    assert (found - day).days <= 5  # at most a long weekend with a holiday on each side
