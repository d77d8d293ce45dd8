"""Backtest (issue 6 §7): a plan version replayed over a program's recorded events, compared with the lines
that were actually made. Nothing is written: the session only reads, and the caller rolls it back.

The evaluation is commissions/replay.py, i.e. plan_earn.evaluation_for + engine.evaluate, the very path live
events take; what a backtest changes is only which version a partner's events are evaluated with:

- The simulated version (the plan's draft by default, or any version number) takes the place of every
  version of that plan wherever the plan applies (PlanBook resolution at each event's time). Other plans and
  the default rate apply as they did, so a partner on another plan is evaluated as live.
- A plan with no assignment at all is simulated as if assigned to the whole program: it wins at program
  level, partner exceptions and group overrides still win over it.
- Events are replayed in the order they happened (occurred_at, then as recorded). Paying events before
  `start` are fed to the history (customer counts, first payments) but make no lines, so caps, tiers and
  true-ups under the simulated version start from nothing at `start`.
- Compared are the events the simulated version applied to ("simulated events"): the would-be lines on them
  against the stored non-rejected lines on them (a recruiter's two-tier share included); a clawback counts with
  the payment it reverses, so a refund in the window of a payment before it is left out on both sides.
- Not simulated: terms acceptance and fraud holds, which keep live lines from being made; a backtest assumes
  every partner accepted the terms and no event was held.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from partnerpay.auth.actor import Actor
from partnerpay.commissions.engine_inputs import EventFacts, PlanRules
from partnerpay.commissions.history import History
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.commissions.plan_earn import PAYING_TYPES, event_facts, plan_rules
from partnerpay.commissions.replay import Chooser, Reversals, remember, replay
from partnerpay.commissions.service import LineDraft
from partnerpay.events.models import Customer, Event
from partnerpay.fx.conversion import Converted
from partnerpay.fx.service import to_program_currency
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.partners.models import Partner
from partnerpay.plans.models import AssignmentScope, Plan, PlanVersion, VersionStatus
from partnerpay.plans.resolve import PlanBook, load_book
from partnerpay.plans.service import get_plan, versions_of
from partnerpay.programs.models import Program
from partnerpay.programs.service import get_program

RECALCULATED = "reversal"  # the kind of line a recalculation reverses a line with (commissions/recalculate.py)
KINDS = ("commission", "true_up", "bonus", "two_tier", "clawback", "reinstatement")
NOT_SIMULATED = (
    "terms acceptance: a partner who had not accepted the program terms made no live lines",
    "fraud holds: a held event made no live lines",
)
# The stand-in version applies from the beginning of time: the simulated rules replace every version of the plan.
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass
class Figures:
    """Amounts by line kind (minor units) and their net."""

    by_kind: dict[str, int] = field(default_factory=lambda: dict.fromkeys(KINDS, 0))

    def add(self, kind: str, amount: int) -> None:
        self.by_kind[kind] = self.by_kind.get(kind, 0) + amount

    @property
    def net(self) -> int:
        return sum(self.by_kind.values())

    def as_dict(self) -> dict[str, int]:
        return {**self.by_kind, "net": self.net}


@dataclass
class Comparison:
    would: Figures = field(default_factory=Figures)
    was: Figures = field(default_factory=Figures)

    @property
    def difference(self) -> int:
        """What the simulated version would have paid more (negative: less) than was made."""
        return self.would.net - self.was.net

    def as_dict(self) -> dict[str, Any]:
        return {"would": self.would.as_dict(), "was": self.was.as_dict(), "difference": self.difference}


@dataclass
class PartnerResult:
    partner_id: str
    name: str
    currencies: dict[str, Comparison] = field(default_factory=dict)


@dataclass
class Simulation:
    plan_id: str
    plan_name: str
    program_id: str
    version: int
    version_status: str
    start: date
    end: date
    events_replayed: int  # events in the window, all evaluated in order
    events_simulated: int  # of them, those the simulated version applied to
    paying_before: int  # paying events before the window read into the history only
    partners: list[PartnerResult]
    totals: dict[str, Comparison]
    lines: list[LineDraft]  # the would-be lines on the simulated events, in replay order
    not_simulated: list[str]

    def as_dict(self) -> dict[str, Any]:
        return {
            "plan": {"id": self.plan_id, "name": self.plan_name},
            "program_id": self.program_id,
            "version": self.version,
            "version_status": self.version_status,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "events": {
                "replayed": self.events_replayed,
                "simulated": self.events_simulated,
                "paying_before": self.paying_before,
            },
            "partners": [
                {
                    "partner_id": p.partner_id,
                    "name": p.name,
                    "currencies": {c: cmp.as_dict() for c, cmp in sorted(p.currencies.items())},
                }
                for p in self.partners
            ],
            "totals": {c: cmp.as_dict() for c, cmp in sorted(self.totals.items())},
            "not_simulated": self.not_simulated,
        }


def simulated_version(session: Session, plan: Plan, version: int | None) -> PlanVersion:
    """The version asked for; by default the draft, else the newest published version."""
    versions = versions_of(session, plan.id)
    if version is not None:
        found = next((v for v in versions if v.version == version), None)
        if found is None:
            known = ", ".join(str(v.version) for v in versions)
            raise NotFound(f"plan {plan.name!r} has no version {version} (versions: {known})", field="version")
        return found
    draft = next((v for v in versions if v.status == VersionStatus.DRAFT), None)
    published = [v for v in versions if v.status == VersionStatus.PUBLISHED]
    return draft or (published[-1] if published else versions[-1])


def chooser(book: PlanBook, plan: Plan, version: PlanVersion) -> tuple[Chooser, PlanRules]:
    """PlanBook resolution with `version` in place of every version of `plan`."""
    # Transient, never added to a session: PlanBook reads only these attributes.
    stand_in = PlanVersion(
        id=version.id,
        plan_id=plan.id,
        version=version.version,
        status=version.status,
        rules=version.rules,
        effective_from=EPOCH,
    )
    simulated = PlanBook(book.plans, book.assignments, {**book.versions, plan.id: [stand_in]})
    rules = PlanRules(version.id, plan.name, version.version, simulated.rules(stand_in))
    unassigned = not any(a.plan_id == plan.id for a in book.assignments)

    def choose(partner: Partner, at: datetime) -> PlanRules | None:
        if unassigned:
            choice = simulated.choose(partner.id, partner.group_id, at)
            if choice is None or choice.how.level == AssignmentScope.PROGRAM:
                return rules
        return plan_rules(simulated, partner, at)

    return choose, rules


def _window(start: date, end: date) -> tuple[datetime, datetime]:
    if end < start:
        raise ValidationError(f"to ({end.isoformat()}) is before from ({start.isoformat()})", field="to")
    return datetime.combine(start, time(), UTC), datetime.combine(end + timedelta(days=1), time(), UTC)


def _events(session: Session, program_id: str, until: datetime) -> Iterator[tuple[EventFacts, str | None, str | None]]:
    """The program's events before `until` in the order they are replayed: (facts, partner id, original id)."""
    rows = session.execute(
        select(Event, Customer.external_id)
        .join(Customer, Customer.id == Event.customer_id)
        .where(Event.program_id == program_id, Event.occurred_at < until)
        .order_by(Event.occurred_at, Event.created_at, Event.id)
    )
    for event, customer_external_id in rows:
        yield event_facts(event, customer_external_id), event.partner_id, event.original_event_id


class Stored(NamedTuple):
    """What the comparison reads of a stored line (columns, not ORM objects: a program has many)."""

    id: str
    event_id: str | None
    reverses_line_id: str | None
    partner_id: str
    kind: str
    amount: int
    currency: str


def _stored_lines(session: Session, program_id: str, until: datetime) -> list[Stored]:
    rows = session.execute(
        select(
            CommissionLine.id,
            CommissionLine.event_id,
            CommissionLine.reverses_line_id,
            CommissionLine.partner_id,
            CommissionLine.kind,
            CommissionLine.amount,
            CommissionLine.currency,
        )
        .join(Event, Event.id == CommissionLine.event_id)
        .where(
            CommissionLine.program_id == program_id,
            CommissionLine.status != LineStatus.REJECTED.value,
            Event.occurred_at < until,
        )
    )
    return [Stored(*row) for row in rows]


def _root_events(lines: Sequence[Stored]) -> dict[str, str]:
    """Line id -> the event of the line it ultimately reverses (itself for a line that reverses nothing)."""
    by_id = {line.id: line for line in lines}
    roots: dict[str, str] = {}
    for line in lines:
        current, seen = line, 0
        while current.reverses_line_id is not None and current.reverses_line_id in by_id and seen < 10:
            current, seen = by_id[current.reverses_line_id], seen + 1
        if current.event_id is not None:
            roots[line.id] = current.event_id
    return roots


@dataclass
class _Window:
    events: list[tuple[EventFacts, str | None]] = field(default_factory=list)  # to replay, in order
    history: History = field(default_factory=History)
    reversals: Reversals = field(default_factory=Reversals)
    originals: dict[str, str] = field(default_factory=dict)  # reversal id -> the event it names
    converted: dict[str, Converted] = field(default_factory=dict)
    paying_before: int = 0


def _read(session: Session, program: Program, since: datetime, until: datetime) -> _Window:
    """The window's events to replay, with what came before remembered (payments and refunds, no lines)."""
    window = _Window()
    for facts, partner_id, original_id in _events(session, program.id, until):
        if original_id is not None:
            window.originals[facts.id] = original_id
        if facts.occurred_at < since:
            remember(window.history, window.reversals, facts, partner_id, original_id=original_id)
            window.paying_before += facts.type in PAYING_TYPES
            continue
        window.events.append((facts, partner_id))
        if facts.type not in window.reversals.kinds:
            # An event in another currency earns on its amount at the rate of its day, as live.
            rate = to_program_currency(
                session, program, amount=facts.amount, currency=facts.currency, at=facts.occurred_at
            )
            if rate is not None:
                window.converted[facts.id] = rate
    return window


def simulate(
    session: Session, actor: Actor, plan_id: str, start: date, end: date, version: int | None = None
) -> Simulation:
    """What the plan's draft (or `version`) would have paid on the events of [start, end] (whole UTC days)
    against what was made on them, per partner and in total; reads only."""
    if not actor.can("read"):
        raise Forbidden("simulating a plan needs the 'read' scope")
    since, until = _window(start, end)
    plan = get_plan(session, actor, plan_id)
    program = get_program(session, actor, plan.program_id)
    chosen = simulated_version(session, plan, version)
    choose, simulated = chooser(load_book(session, program.id), plan, chosen)
    partners = {p.id: p for p in session.scalars(select(Partner).where(Partner.program_id == program.id))}

    window = _read(session, program, since, until)
    covered: set[str] = set()  # events the simulated version applied to
    lines: list[LineDraft] = []
    origin: dict[str, str] = {}  # would-be line id -> the event it counts with
    for done in replay(
        program,
        partners,
        window.events,
        choose,
        history=window.history,
        reversals=window.reversals,
        originals=window.originals,
        converted=window.converted,
    ):
        if done.plan is not None and done.plan.version_id == simulated.version_id:
            covered.add(done.event.id)
        for line in done.lines:
            origin[line.draft.id] = done.reverses.get(line.draft.id, done.event.id)
            lines.append(line.draft)
    would = [d for d in lines if origin[d.id] in covered]

    stored = _stored_lines(session, program.id, until)
    roots = _root_events(stored)
    # A line a recalculation reversed and its "reversal" cancel out: its replacement is what was made.
    recalculated = {x.reverses_line_id for x in stored if x.kind == RECALCULATED}
    was = [x for x in stored if roots.get(x.id) in covered and x.kind != RECALCULATED and x.id not in recalculated]
    return _result(
        plan=plan,
        chosen=chosen,
        start=start,
        end=end,
        partners=partners,
        would=would,
        was=was,
        counts=(len(window.events), len(covered), window.paying_before),
    )


def _result(
    *,
    plan: Plan,
    chosen: PlanVersion,
    start: date,
    end: date,
    partners: Mapping[str, Partner],
    would: Sequence[LineDraft],
    was: Sequence[Stored],
    counts: tuple[int, int, int],
) -> Simulation:
    per_partner: dict[str, dict[str, Comparison]] = defaultdict(dict)
    totals: dict[str, Comparison] = {}
    for side, rows in (("would", [(d.partner_id, d.currency, d.kind, d.amount) for d in would]),
                       ("was", [(x.partner_id, x.currency, x.kind, x.amount) for x in was])):  # fmt: skip
        for partner_id, currency, kind, amount in rows:
            for comparison in (
                per_partner[partner_id].setdefault(currency, Comparison()),
                totals.setdefault(currency, Comparison()),
            ):
                getattr(comparison, side).add(kind, amount)
    results = [
        PartnerResult(pid, partners[pid].name if pid in partners else pid, by_currency)
        for pid, by_currency in per_partner.items()
    ]
    results.sort(key=lambda r: (r.name.lower(), r.partner_id))
    replayed, simulated, before = counts
    return Simulation(
        plan_id=plan.id,
        plan_name=plan.name,
        program_id=plan.program_id,
        version=chosen.version,
        version_status=chosen.status,
        start=start,
        end=end,
        events_replayed=replayed,
        events_simulated=simulated,
        paying_before=before,
        partners=results,
        totals=totals,
        lines=list(would),
        not_simulated=list(NOT_SIMULATED),
    )
