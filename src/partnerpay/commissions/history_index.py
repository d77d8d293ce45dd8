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
from collections.abc import Iterable, Iterator, Sequence, Set
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from partnerpay.commissions.engine_inputs import EarlierLine
from partnerpay.kit.money import Rounding, percent_of
from partnerpay.plans.rules import Period, Rule, TierMode

if TYPE_CHECKING:
    from partnerpay.commissions.history import Made, Paying

# Lines that count as earned under a rule for its caps and tiers (a bonus is its own, a two-tier share the recruiter's).
EARNING = ("commission", "true_up")


_STARTS: dict[tuple[int, int], dict[Period, datetime]] = {}


def period_starts(at: datetime) -> dict[Period, datetime]:
    """The start of the month, quarter and year `at` falls in (UTC); shared, do not change the dict."""
    if at.tzinfo is not UTC:
        at = at.astimezone(UTC)
    starts = _STARTS.get((at.year, at.month))
    if starts is None:
        starts = _STARTS[(at.year, at.month)] = {
            Period.MONTH: datetime(at.year, at.month, 1, tzinfo=UTC),
            Period.QUARTER: datetime(at.year, 3 * ((at.month - 1) // 3) + 1, 1, tzinfo=UTC),
            Period.YEAR: datetime(at.year, 1, 1, tzinfo=UTC),
        }
    return starts


def period_start(period: Period, at: datetime) -> datetime:
    return period_starts(at)[period]


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

    def count(self, customer: str, at: datetime) -> int:
        """Customers who paid at or before `at`, `customer` not counted."""
        first = self.first.get(customer)
        return bisect_right(self.times, at) - (1 if first is not None and first <= at else 0)


class _PayingIndex:
    """One partner's paying events: per calendar period (and for all history) each customer's first payment."""

    __slots__ = ("events", "ever", "periods", "records")

    def __init__(self) -> None:
        self.records: list[Paying] = []
        self.events: set[str] = set()
        self.ever = _FirstPaid()
        self.periods: dict[tuple[Period, datetime], _FirstPaid] = {}

    def add(self, p: Paying) -> None:
        self.records.append(p)
        self.events.add(p.event_id)
        self.ever.add(p.customer_id, p.occurred_at)
        for key in period_starts(p.occurred_at).items():
            bucket = self.periods.get(key)
            if bucket is None:
                bucket = self.periods[key] = _FirstPaid()
            bucket.add(p.customer_id, p.occurred_at)

    def others(
        self, starts: dict[Period, datetime], at: datetime, customer: str, exclude: str
    ) -> tuple[dict[Period, int], int]:
        """Distinct customers other than `customer` with a paying event at or before `at`, the event `exclude`
        left out: in each period that `at` falls in, and in all history."""
        if exclude in self.events:
            # Only live evaluation asks about an event already recorded, over a short history: count it out.
            paid = [
                p for p in self.records if p.occurred_at <= at and p.event_id != exclude and p.customer_id != customer
            ]
            counts = {
                period: len({p.customer_id for p in paid if p.occurred_at >= since}) for period, since in starts.items()
            }
            return counts, len({p.customer_id for p in paid})
        counts = {}
        for key in starts.items():
            bucket = self.periods.get(key)
            counts[key[0]] = 0 if bucket is None else bucket.count(customer, at)
        return counts, self.ever.count(customer, at)


class _RuleSums:
    """What the lines of one bucket (a customer, or a cap period) earned, per rule number, for the common question:
    everything so far, the asked-about event not among them. Anything else is answered by a scan."""

    __slots__ = ("events", "last", "totals")

    def __init__(self) -> None:
        self.totals: dict[int, int] = {}
        self.events: set[str | None] = set()
        self.last: datetime | None = None

    def add(self, number: int, m: Made) -> None:
        self.totals[number] = self.totals.get(number, 0) + m.amount
        self.events.add(m.event_id)
        if self.last is None or m.event_at > self.last:
            self.last = m.event_at

    def into(self, out: dict[int, int], numbers: Set[int], at: datetime, exclude: str) -> bool:
        """Write the totals into `out` when they answer the question; False: they do not, scan instead."""
        if self.last is not None and self.last <= at and exclude not in self.events and self.totals.keys() <= numbers:
            out.update(self.totals)
            return True
        return False


class _Fold:
    """A retroactive rule's earning lines of one tier period in time order (ties as added), with the fold of
    them all kept up to date while lines arrive in order."""

    __slots__ = ("done", "entries", "ids", "times", "view")

    def __init__(self) -> None:
        self.entries: list[Made] = []
        self.times: list[datetime] = []
        self.ids: set[str | None] = set()
        self.done: tuple[Rounding, list[int], list[int]] | None = None
        self.view: list[EarlierLine] | None = None  # the fold of all entries as EarlierLines, until one is added

    def add(self, m: Made) -> None:
        self.view = None
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
                self.view = None
            if self.view is None:
                self.view = [EarlierLine(b, e) for b, e in zip(self.done[1], self.done[2], strict=True)]
            return list(self.view)
        else:
            end = bisect_right(self.times, at)
            bases, earned = fold_earlier((m for m in self.entries[:end] if m.event_id != exclude), rounding)
        return [EarlierLine(b, e) for b, e in zip(bases, earned, strict=True)]


@dataclass(frozen=True, slots=True)
class PlanShape:
    """What the counts read of a plan version's rules, worked out once per rule list."""

    rules: Sequence[Rule]
    zeros: dict[int, int]  # every rule number (from 1) -> 0
    cap_period: dict[int, Period]
    capped_in: dict[Period, frozenset[int]]  # cap period -> the rule numbers capped by it
    retroactive: tuple[tuple[int, Period], ...]  # (rule number, tier period) of retroactive tier rules

    @classmethod
    def of(cls, rules: Sequence[Rule]) -> PlanShape:
        cap_period = {n: rule.caps.period for n, rule in enumerate(rules, start=1)}
        retroactive = tuple(
            (n, rule.tier_period)
            for n, rule in enumerate(rules, start=1)
            if rule.tier_mode is TierMode.RETROACTIVE and rule.tier_period is not None
        )
        zeros = dict.fromkeys(cap_period, 0)
        capped_in = {
            p: frozenset(n for n, q in cap_period.items() if q is p) for p in dict.fromkeys(cap_period.values())
        }
        return cls(rules, zeros, cap_period, capped_in, retroactive)


class _LineIndex:
    """One partner's plan lines: commission sums per (version, customer) and rule; earning sums per (version,
    cap period) and rule; retroactive folds per (version, rule, tier period). Sums and folds are kept for the
    periods the plan's rules ask for (registered by `want`, backfilled from the lines so far)."""

    __slots__ = ("fold_periods", "folds", "made", "shapes", "sum_periods", "sums", "to_customer")

    def __init__(self) -> None:
        self.made: list[Made] = []  # every line indexed so far, in the order added
        self.to_customer: dict[tuple[str, str | None], _RuleSums] = defaultdict(_RuleSums)
        self.sums: dict[tuple[str, Period, datetime], _RuleSums] = defaultdict(_RuleSums)
        self.folds: dict[tuple[str, int, Period, datetime], _Fold] = defaultdict(_Fold)
        self.sum_periods: dict[tuple[str, int], set[Period]] = defaultdict(set)
        self.fold_periods: dict[tuple[str, int], set[Period]] = defaultdict(set)
        self.shapes: dict[str, PlanShape] = {}

    def add(self, m: Made) -> None:
        self.made.append(m)
        version, number = m.plan_version_id, m.rule_number
        if m.kind == "commission":
            self.to_customer[(version, m.customer_id)].add(number, m)
        if m.kind in EARNING:
            key = (version, number)
            summed, folded = self.sum_periods.get(key), self.fold_periods.get(key)
            if summed or folded:
                starts = period_starts(m.event_at)
                for period in summed or ():
                    self.sums[(version, period, starts[period])].add(number, m)
                for period in folded or ():
                    self.folds[(version, number, period, starts[period])].add(m)

    def want(self, version: str, shape: PlanShape) -> None:
        """Index the periods these rules read (cap period, retroactive tier period), from every line so far."""
        if self.shapes.get(version) is shape:
            return
        self.shapes[version] = shape
        for number, period in shape.cap_period.items():
            if period not in self.sum_periods[(version, number)]:
                self.sum_periods[(version, number)].add(period)
                for m in self._earning(version, number):
                    self.sums[(version, period, period_start(period, m.event_at))].add(number, m)
        for number, period in shape.retroactive:
            if period not in self.fold_periods[(version, number)]:
                self.fold_periods[(version, number)].add(period)
                for m in self._earning(version, number):
                    self.folds[(version, number, period, period_start(period, m.event_at))].add(m)

    def _earning(self, version: str, number: int) -> Iterator[Made]:
        return (m for m in self.made if m.plan_version_id == version and m.rule_number == number and m.kind in EARNING)

    def counts(
        self,
        version: str,
        shape: PlanShape,
        customer: str,
        starts: dict[Period, datetime],
        at: datetime,
        exclude: str,
        rounding: Rounding,
    ) -> tuple[dict[int, int], dict[int, int], dict[int, list[EarlierLine]]]:
        """Per rule number: paid to this customer, earned in the cap period, the tier period's earlier lines."""
        paid_to_customer = dict(shape.zeros)
        mine = self.to_customer.get((version, customer))
        if mine is not None and not mine.into(paid_to_customer, shape.zeros.keys(), at, exclude):
            for m in self.made:
                if (
                    m.kind == "commission"
                    and m.customer_id == customer
                    and m.plan_version_id == version
                    and m.rule_number in paid_to_customer
                    and m.event_at <= at
                    and m.event_id != exclude
                ):
                    paid_to_customer[m.rule_number] += m.amount
        earned = dict(shape.zeros)
        for period, numbers in shape.capped_in.items():
            since = starts[period]
            bucket = self.sums.get((version, period, since))
            if bucket is not None and not bucket.into(earned, numbers, at, exclude):
                for m in self.made:
                    if (
                        m.kind in EARNING
                        and m.plan_version_id == version
                        and m.rule_number in numbers
                        and since <= m.event_at <= at
                        and m.event_id != exclude
                    ):
                        earned[m.rule_number] += m.amount
        earlier: dict[int, list[EarlierLine]] = {}
        for number, period in shape.retroactive:
            fold = self.folds.get((version, number, period, starts[period]))
            earlier[number] = [] if fold is None else fold.earlier(at, exclude, rounding)
        return paid_to_customer, earned, earlier


class PartnerIndex:
    """One partner's paying events and plan lines, indexed."""

    __slots__ = ("lines", "paid_seen", "paying")

    def __init__(self) -> None:
        self.paying = _PayingIndex()
        self.lines = _LineIndex()
        self.paid_seen = 0  # how many of the partner's paying records are indexed (lines: len(lines.made))

    def catch_up(self, paying: Sequence[Paying], lines: Sequence[Made]) -> None:
        """Index the records appended since the last call."""
        if len(paying) > self.paid_seen:
            for p in paying[self.paid_seen :]:
                self.paying.add(p)
            self.paid_seen = len(paying)
        if len(lines) > len(self.lines.made):
            for m in lines[len(self.lines.made) :]:
                self.lines.add(m)
