"""Federal Reserve banking days, for a NACHA file's effective entry date.

ACH settles only on days the Federal Reserve is open: not weekends, not US federal holidays. The Fed's own
rule differs from the usual "observed" one in one place: a holiday on a Sunday closes the Monday after, but a
holiday on a Saturday does not close the Friday before. So the holidays come from the `holidays` package
without its observed days, and the Monday rule is applied here.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import lru_cache

import holidays


@lru_cache(maxsize=16)
def _federal_holidays(year: int) -> frozenset[date]:
    return frozenset(holidays.country_holidays("US", years=year, observed=False).keys())


def is_banking_day(day: date) -> bool:
    if day.weekday() >= 5:
        return False
    if day in _federal_holidays(day.year):
        return False
    sunday = day - timedelta(days=1)
    return not (day.weekday() == 0 and sunday in _federal_holidays(sunday.year))


def next_banking_day(after: date) -> date:
    """The first banking day strictly after `after`: the earliest a file sent that day can settle."""
    day = after + timedelta(days=1)
    while not is_banking_day(day):
        day += timedelta(days=1)
    return day
