"""The per-partner index behind commissions/history.py's counts: paying customers by period, line sums by
customer and by cap period, retroactive folds by tier period, each kept up to date as records are added so a
context costs a few look-ups and bisections per rule instead of a scan of the partner's whole history.

Every query here answers exactly what a plain recount over the records would (tests/unit/test_history.py
holds it to one on random histories): records at or before a time, the records of one event left out.
Out-of-order records are kept in order by bisection; the common case (records arriving in time order,
asked about at the latest time) never rescans anything.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from partnerpay.commissions.engine_inputs import EarlierLine
from partnerpay.kit.money import Rounding, percent_of
from partnerpay.plans.rules import Period, Rule, TierMode

if TYPE_CHECKING:
    from partnerpay.commissions.history import Made, Paying

# Lines that count as earned under a rule for its caps and tiers (a bonus is its own, a two-tier share the recruiter's).
EARNING = ("commission", "true_up")


def period_start(period: Period, at: datetime) -> datetime:
    at = at.astimezone(UTC)
    if period is Period.MONTH:
        return datetime(at.year, at.month, 1, tzinfo=UTC)
    if period is Period.QUARTER:
        return datetime(at.year, 3 * ((at.month - 1) // 3) + 1, 1, tzinfo=UTC)
    return datetime(at.year, 1, 1, tzinfo=UTC)


def fold_earlier(lines: Iterable[Made], rounding: Rounding) -> tuple[list[int], list[int]]:
    """A retroactive rule's period lines in time order → each commission line's base and what it has earned.

    A true-up lifted every earlier line of its period to its rate; replaying them in order gives each line's
    earned amount. A true-up cut by a cap is counted as if whole, so a later true-up may pay less, never twice.
    """
    bases: list[int] = []
    earned: list[int] = []
    for m in lines:
        _fold_step(bases, earned, m, rounding)
    return bases, earned


def _fold_step(bases: list[int], earned: list[int], m: Made, rounding: Rounding) -> None:
    if m.kind == "commission":
        bases.append(m.base)
        earned.append(m.amount)
    else:
        # Lifts every line so far; the true-up's own event line is at that rate already, so unchanged.
        earned[:] = [max(e, percent_of(b, m.rate_bp, rounding)) for b, e in zip(bases, earned, strict=True)]


class _FirstPaid:
    """Distinct customers with a paying event in one period (or in all history): each one's earliest time there,
    sorted, so "how many paid at or before t" is one bisection."""

    __slots__ = ("first", "times")

    def __init__(self) -> None:
        self.first: dict[str, datetime] = {}
        self.times: list[datetime] = []

    def add(self, customer: str, at: datetime) -> None:
        old = self.first.get(customer)
        if old is not None:
            if old <= at:
                return
            del self.times[bisect_left(self.times, old)]
        self.first[customer] = at
        insort(self.times, at)

    def paid_by(self, customer: str, at: datetime) -> bool:
        first = self.first.get(customer)
        return first is not None and first <= at


class _PayingIndex:
    """One partner's paying events by customer, by calendar period and by event id."""

    __slots__ = ("by_customer", "by_event", "ever", "periods")

    def __init__(self) -> None:
        self.by_customer: dict[str, list[tuple[datetime, str]]] = defaultdict(list)  # sorted by time
        self.by_event: dict[str, list[Paying]] = defaultdict(list)
        self.ever = _FirstPaid()
        self.periods: dict[tuple[Period, datetime], _FirstPaid] = {}

    def add(self, p: Paying) -> None:
        insort(self.by_customer[p.customer_id], (p.occurred_at, p.event_id))
        self.by_event[p.event_id].append(p)
        self.ever.add(p.customer_id, p.occurred_at)
        for period in Period:
            key = (period, period_start(period, p.occurred_at))
            bucket = self.periods.get(key)
            if bucket is None:
                bucket = self.periods[key] = _FirstPaid()
            bucket.add(p.customer_id, p.occurred_at)

    def others(self, period: Period | None, since: datetime | None, at: datetime, customer: str, exclude: str) -> int:
        """Distinct customers other than `customer` with a paying event in [since, at] (all history when
        `period` is None), the paying events of event `exclude` left out."""
        bucket = self.ever if period is None or since is None else self.periods.get((period, since))
        if bucket is None:
            return 0
        count = bisect_right(bucket.times, at)
        if bucket.paid_by(customer, at):
            count -= 1
        excluded = self.by_event.get(exclude, ())
        for other in {p.customer_id for p in excluded if p.customer_id != customer}:
            # Counted through the left-out event: still counted only if it paid again in the window.
            if bucket.paid_by(other, at) and not any(
                (since is None or since <= t) and t <= at and i != exclude for t, i in self.by_customer[other]
            ):
                count -= 1
        return count


class _Sums:
    """Amounts of lines in time order with their total, for "earned at or before t, one event left out"."""

    __slots__ = ("amounts", "by_event", "ids", "times", "total")

    def __init__(self) -> None:
        self.times: list[datetime] = []
        self.amounts: list[int] = []
        self.ids: list[str | None] = []
        self.by_event: dict[str | None, int] = defaultdict(int)
        self.total = 0

    def add(self, m: Made) -> None:
        at = bisect_right(self.times, m.event_at)
        self.times.insert(at, m.event_at)
        self.amounts.insert(at, m.amount)
        self.ids.insert(at, m.event_id)
        self.by_event[m.event_id] += m.amount
        self.total += m.amount

    def upto(self, at: datetime, exclude: str) -> int:
        if not self.times:
            return 0
        if self.times[-1] <= at:
            return self.total - self.by_event.get(exclude, 0)
        end = bisect_right(self.times, at)
        return sum(a for a, i in zip(self.amounts[:end], self.ids[:end], strict=True) if i != exclude)


class _Fold:
    """A retroactive rule's earning lines of one tier period in time order (ties as added), with the fold of
    them all kept up to date while lines arrive in order."""

    __slots__ = ("done", "entries", "ids", "times")

    def __init__(self) -> None:
        self.entries: list[Made] = []
        self.times: list[datetime] = []
        self.ids: set[str | None] = set()
        self.done: tuple[Rounding, list[int], list[int]] | None = None

    def add(self, m: Made) -> None:
        at = bisect_right(self.times, m.event_at)
        self.times.insert(at, m.event_at)
        self.entries.insert(at, m)
        self.ids.add(m.event_id)
        if self.done is not None:
            if at == len(self.entries) - 1:
                _fold_step(self.done[1], self.done[2], m, self.done[0])
            else:
                self.done = None  # a late line: refold when next asked

    def earlier(self, at: datetime, exclude: str, rounding: Rounding) -> list[EarlierLine]:
        if self.times and self.times[-1] <= at and exclude not in self.ids:
            if self.done is None or self.done[0] is not rounding:
                self.done = (rounding, *fold_earlier(self.entries, rounding))
            bases, earned = self.done[1], self.done[2]
        else:
            end = bisect_right(self.times, at)
            bases, earned = fold_earlier((m for m in self.entries[:end] if m.event_id != exclude), rounding)
        return [EarlierLine(b, e) for b, e in zip(bases, earned, strict=True)]


class _LineIndex:
    """One partner's plan lines: per (version, customer, rule) commission sums, and per (version, rule, period)
    earning sums and retroactive folds for the periods the plan's rules ask for (registered by `want`)."""

    __slots__ = ("fold_periods", "folds", "made", "rules_seen", "sum_periods", "sums", "to_customer")

    def __init__(self) -> None:
        self.made: list[Made] = []  # every line indexed so far, in the order added
        self.to_customer: dict[tuple[str, str | None, int], _Sums] = defaultdict(_Sums)
        self.sums: dict[tuple[str, int, Period, datetime], _Sums] = defaultdict(_Sums)
        self.folds: dict[tuple[str, int, Period, datetime], _Fold] = defaultdict(_Fold)
        self.sum_periods: dict[tuple[str, int], set[Period]] = defaultdict(set)
        self.fold_periods: dict[tuple[str, int], set[Period]] = defaultdict(set)
        self.rules_seen: dict[str, Sequence[Rule]] = {}

    def add(self, m: Made) -> None:
        self.made.append(m)
        version, number = m.plan_version_id, m.rule_number
        if m.kind == "commission":
            self.to_customer[(version, m.customer_id, number)].add(m)
        if m.kind in EARNING:
            for period in self.sum_periods.get((version, number), ()):
                self.sums[(version, number, period, period_start(period, m.event_at))].add(m)
            for period in self.fold_periods.get((version, number), ()):
                self.folds[(version, number, period, period_start(period, m.event_at))].add(m)

    def want(self, version: str, rules: Sequence[Rule]) -> None:
        """Index the periods these rules read (cap period, retroactive tier period), from every line so far."""
        if self.rules_seen.get(version) is rules:
            return
        self.rules_seen[version] = rules
        for number, rule in enumerate(rules, start=1):
            self._want(self.sum_periods, self.sums, version, number, rule.caps.period)
            if rule.tier_mode is TierMode.RETROACTIVE and rule.tier_period is not None:
                self._want(self.fold_periods, self.folds, version, number, rule.tier_period)

    def _want(
        self,
        wanted: dict[tuple[str, int], set[Period]],
        into: dict[tuple[str, int, Period, datetime], _Sums] | dict[tuple[str, int, Period, datetime], _Fold],
        version: str,
        number: int,
        period: Period,
    ) -> None:
        periods = wanted[(version, number)]
        if period in periods:
            return
        periods.add(period)
        for m in self.made:
            if m.plan_version_id == version and m.rule_number == number and m.kind in EARNING:
                into[(version, number, period, period_start(period, m.event_at))].add(m)

    def paid_to(self, version: str, customer: str, number: int, at: datetime, exclude: str) -> int:
        sums = self.to_customer.get((version, customer, number))
        return 0 if sums is None else sums.upto(at, exclude)

    def earned(self, version: str, number: int, period: Period, since: datetime, at: datetime, exclude: str) -> int:
        sums = self.sums.get((version, number, period, since))
        return 0 if sums is None else sums.upto(at, exclude)

    def earlier(
        self,
        version: str,
        number: int,
        period: Period,
        since: datetime,
        at: datetime,
        exclude: str,
        rounding: Rounding,
    ) -> list[EarlierLine]:
        fold = self.folds.get((version, number, period, since))
        return [] if fold is None else fold.earlier(at, exclude, rounding)


class PartnerIndex:
    """One partner's paying events and plan lines, indexed."""

    __slots__ = ("lines", "paid_seen", "paying")

    def __init__(self) -> None:
        self.paying = _PayingIndex()
        self.lines = _LineIndex()
        self.paid_seen = 0  # how many of the partner's paying records are indexed (lines: len(lines.made))

    def catch_up(self, paying: Sequence[Paying], lines: Sequence[Made]) -> None:
        """Index the records appended since the last call."""
        for p in paying[self.paid_seen :]:
            self.paying.add(p)
        self.paid_seen = len(paying)
        for m in lines[len(self.lines.made) :]:
            self.lines.add(m)
