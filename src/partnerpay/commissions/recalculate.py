"""Recalculation: when a late event arrives, a partner's plan lines are re-derived by replaying its events in time
order (commissions/replay.py, the very evaluation live ingest uses) and the difference is written as new lines:
a changed or no-longer-owed line is reversed by a line of kind "reversal" (never edited), and the line now owed
is created beside it. Unchanged lines are left alone, so running it again writes nothing.

Live evaluation reads only what happened before each event as it arrived (commissions/history.py), so an
invoice that is recorded late but occurred earlier leaves the later events' tiers, caps and bonuses as they were
counted without it; this module is how they catch up, by hand (CLI, API) or by the outbox job record_event
enqueues for such an event (commissions/recalculate_auto.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from partnerpay.audit import service as audit
from partnerpay.auth.actor import Actor, ActorType
from partnerpay.commissions.engine_inputs import EngineLine, EventFacts, PlanRules
from partnerpay.commissions.explain import with_attribution
from partnerpay.commissions.history import earliest_needed
from partnerpay.commissions.models import CommissionLine, LineStatus
from partnerpay.commissions.plan_earn import event_facts, not_reversed, plan_rules
from partnerpay.commissions.recalculate_history import held_payments, history_before
from partnerpay.commissions.replay import NOT_TRIGGER_TYPES, replay
from partnerpay.commissions.service import UNPAID, LineDraft, line_snapshot, post_lines
from partnerpay.events.models import Customer, Event
from partnerpay.fx.service import to_program_currency
from partnerpay.kit.errors import Forbidden, NotFound, ValidationError
from partnerpay.kit.ids import new_id
from partnerpay.kit.money import format_money
from partnerpay.partners.models import Partner, PartnerStatus
from partnerpay.partners.service import get_partner
from partnerpay.plans.resolve import PlanBook, load_book
from partnerpay.plans.rules import Rule
from partnerpay.programs.models import Program
from partnerpay.tracking import adoption
from partnerpay.tracking.attribution_models import Attribution

REVERSAL = "reversal"
# The lines an event's evaluation makes; clawbacks, reversals and adjustments are not re-derived.
DERIVED = ("commission", "true_up", "bonus", "two_tier")
Key = tuple[str, str, int | None, str]  # (event id, kind, rule number, partner id)


@dataclass(frozen=True)
class Reversed:
    original: CommissionLine
    reversal: CommissionLine | None  # None in a dry run


@dataclass
class Recalculation:
    partner_id: str
    since: datetime | None
    start: datetime | None  # events from here were replayed; None: all of the partner's history
    events: int = 0
    dry_run: bool = False
    reversed: list[Reversed] = field(default_factory=list)  # changed lines and their clawbacks
    created: list[CommissionLine] = field(default_factory=list)  # not stored in a dry run
    clawbacks: list[CommissionLine] = field(default_factory=list)  # recorded refunds re-applied to new lines

    @property
    def changed(self) -> bool:
        return bool(self.reversed or self.created)


def key_of(line: CommissionLine) -> Key:
    assert line.event_id is not None
    return (line.event_id, line.kind, line.rule_number, line.partner_id)


def same_line(stored: CommissionLine, draft: LineDraft) -> bool:
    """What a line is worth; its explanation (e.g. "customer 4 this quarter") may read differently and still be."""
    return (stored.amount, stored.currency, stored.base_amount, stored.rate_bp, stored.plan_version_id) == (
        draft.amount,
        draft.currency,
        draft.base_amount,
        draft.rate_bp,
        draft.plan_version_id,
    )


def check_may_recalculate(actor: Actor) -> None:
    if actor.type is ActorType.PARTNER or actor.partner_id is not None:
        raise Forbidden("partners cannot recalculate commissions; ask the program team")
    scope = "approve" if actor.type is ActorType.STAFF else "write"
    if not actor.can(scope):
        who = "the finance or owner role" if actor.type is ActorType.STAFF else "an API key with the 'write' scope"
        raise Forbidden(f"recalculating commissions needs {who}")


def recalculate(
    session: Session,
    *,
    actor: Actor,
    program_id: str,
    partner_id: str,
    since: datetime | None,
    now: datetime,
    dry_run: bool = False,
) -> Recalculation:
    """Re-derive the partner's plan lines from `since` (None: all history) and write the difference, audited."""
    check_may_recalculate(actor)
    if since is not None and since.tzinfo is None:
        raise ValidationError("since needs a UTC offset (2026-03-01T00:00:00Z)", field="since")
    partner = get_partner(session, actor, partner_id)
    if partner.program_id != program_id:
        raise NotFound(f"partner {partner_id} not found", field="partner_id")
    if partner.status != PartnerStatus.ACTIVE.value:
        # Evaluation pays an inactive partner nothing: replaying would take back what it earned while active.
        raise ValidationError(f"partner {partner_id} is {partner.status}; only an active partner is recalculated")
    # Serialise with another recalculation of this partner (PostgreSQL; SQLite's writer lock already does).
    session.execute(select(Partner.id).where(Partner.id == partner.id).with_for_update())
    program = session.get(Program, program_id)
    assert program is not None
    book = load_book(session, program.id)
    start = replay_start(session, book, partner, since)
    events = _events(session, partner.id, start)
    result = Recalculation(partner.id, since, start, events=len(events), dry_run=dry_run)
    held = held_payments(session, program, partner.id, start)
    stored = _stored(session, partner.id, start, held)
    expected = _replayed(session, program, book, partner, events, start, held, _pinned(book, stored), now)
    to_reverse: list[CommissionLine] = []
    to_create: list[EngineLine] = []
    for key in sorted(set(expected) | set(stored), key=lambda k: (k[0], k[1], k[2] or 0, k[3])):
        old, new = stored.get(key, []), expected.get(key)
        if new is not None and old and same_line(old[0], new.draft):
            to_reverse += old[1:]
            continue
        to_reverse += old
        if new is not None:
            to_create.append(new)
    if not to_reverse and not to_create:
        return result
    created = _new_lines(session, to_create, partner, events)
    followers = _clawbacks_of(session, to_reverse)
    if dry_run:
        result.reversed = [Reversed(x, None) for x in to_reverse + followers]
        result.created = created
        return result
    replacement = {key_of(x): x for x in created}
    reversals = [_reversal(x, since=since, now=now, replacement=replacement.get(key_of(x))) for x in to_reverse] + [
        _reversal(x, since=since, now=now, replacement=None) for x in followers
    ]
    session.add_all(reversals + created)
    session.flush()
    post_lines(session, program.id, reversals + created, now)
    audit.record_many(
        session,
        actor=actor,
        action="commission.recalculate",
        now=now,
        items=[
            (
                "commission_line",
                x.id,
                x.program_id,
                None,
                {
                    **line_snapshot(x),
                    "kind": x.kind,
                    "rule_number": x.rule_number,
                    "reverses_line_id": x.reverses_line_id,
                },
            )
            for x in reversals + created
        ],
    )
    result.reversed = [Reversed(x, r) for x, r in zip(to_reverse + followers, reversals, strict=True)]
    result.created = created
    # Refunds already recorded against these payments take back their share of the new lines.
    by_event = {e.id: e for e, _ in events}
    for event_id in sorted({x.event_id for x in created if x.kind == "commission" and x.event_id}):
        result.clawbacks += adoption.claw_back_recorded(session, actor=actor, original=by_event[event_id], now=now)
    return result


def replay_start(session: Session, book: PlanBook, partner: Partner, since: datetime | None) -> datetime | None:
    """The start of the earliest tier or cap period containing `since` of the rules the partner is paid by from
    then on; None (all history) when one of them has a one-time bonus, which counts customers since the start."""
    if since is None:
        return None
    since = since.astimezone(UTC)
    later = session.scalars(
        select(Event.occurred_at).where(Event.partner_id == partner.id, Event.occurred_at >= since).distinct()
    ).all()
    rules: list[Rule] = []
    seen: set[str] = set()
    for at in [since, *later]:
        plan = plan_rules(book, partner, at)
        if plan is not None and plan.version_id not in seen:
            seen.add(plan.version_id)
            rules += plan.rules
    return earliest_needed(rules, since)


def _events(session: Session, partner_id: str, start: datetime | None) -> list[tuple[Event, str]]:
    """The partner's events from `start` in the order they are evaluated, with their customer's external id."""
    stmt = (
        select(Event, Customer.external_id)
        .join(Customer, Customer.id == Event.customer_id)
        .where(Event.partner_id == partner_id)
        .order_by(Event.occurred_at, Event.created_at, Event.id)
    )
    if start is not None:
        stmt = stmt.where(Event.occurred_at >= start)
    return [(event, external_id) for event, external_id in session.execute(stmt)]


def _replayed(
    session: Session,
    program: Program,
    book: PlanBook,
    partner: Partner,
    events: Sequence[tuple[Event, str]],
    start: datetime | None,
    held: set[str],
    pinned: dict[str, PlanRules | None],
    now: datetime,
) -> dict[Key, EngineLine]:
    """The lines the partner's events make when evaluated in time order after what came before `start`."""
    history = history_before(session, partner.id, start, {e.id for e, _ in events})

    current = [""]  # the event being replayed, for the chooser

    def choose(p: Partner, at: datetime) -> PlanRules | None:
        return pinned[current[0]] if current[0] in pinned else plan_rules(book, p, at)

    def facts() -> Iterator[tuple[EventFacts, str | None]]:
        # Pulled one at a time, after the previous event's lines are in the history.
        for event, external_id in events:
            fact = event_facts(event, external_id)
            if event.id in held:
                # A held payment earns nothing until its flag is cleared, as live; it still counts as paying.
                history.add_paying(partner.id, fact.customer_id, fact.id, fact.occurred_at)
                continue
            current[0] = event.id
            yield fact, partner.id

    # An event in another currency earns on its amount at the rate of its day, as live (plan_earn.earn).
    converted = {
        e.id: rate
        for e, _ in events
        if e.currency not in (None, program.currency) and e.type not in NOT_TRIGGER_TYPES
        for rate in [to_program_currency(session, program, amount=e.amount, currency=e.currency, at=e.occurred_at)]
        if rate is not None
    }
    expected: dict[Key, EngineLine] = {}
    for done in replay(
        program,
        {partner.id: partner},
        facts(),
        choose,
        history=history,
        now=now,
        converted=converted,
    ):
        for line in done.lines:
            d = line.draft
            if d.kind not in DERIVED:
                continue  # the replay's own clawbacks: the stored ones are reversed and re-made from refunds
            expected[(d.event_id, d.kind, d.rule_number, d.partner_id)] = line
    return expected


def _pinned(book: PlanBook, stored: dict[Key, list[CommissionLine]]) -> dict[str, PlanRules | None]:
    """Event id -> the plan version its standing lines were made under (None: the program's default rate).

    An event is re-evaluated under that version, not under whatever an assignment made later says of its time:
    a plan published or assigned afterwards never changes lines already made; it applies to events with none.
    """
    versions = {v.id: v for found in book.versions.values() for v in found}
    pinned: dict[str, PlanRules | None] = {}
    for (event_id, _, _, _), lines in stored.items():
        version = versions.get(lines[0].plan_version_id or "")
        if version is not None:
            name = book.plans[version.plan_id].name
            pinned[event_id] = PlanRules(version.id, name, version.version, book.rules(version))
        elif lines[0].plan_version_id is None:
            pinned.setdefault(event_id, None)
    return pinned


def _stored(
    session: Session, partner_id: str, start: datetime | None, held: set[str]
) -> dict[Key, list[CommissionLine]]:
    """The standing lines made on the partner's replayed events (its own and its recruiter's two-tier share)."""
    events = select(Event.id).where(Event.partner_id == partner_id)
    if start is not None:
        events = events.where(Event.occurred_at >= start)
    rows = session.scalars(
        select(CommissionLine)
        .where(
            CommissionLine.event_id.in_(events),
            CommissionLine.kind.in_(DERIVED),
            CommissionLine.status != LineStatus.REJECTED.value,
            not_reversed(),
            or_(CommissionLine.partner_id == partner_id, CommissionLine.kind == "two_tier"),
        )
        .order_by(CommissionLine.created_at, CommissionLine.id)
        # Statuses as stored now: approvals and payout runs move them by bulk UPDATE, past loaded objects.
        .execution_options(populate_existing=True)
    ).all()
    out: dict[Key, list[CommissionLine]] = defaultdict(list)
    for line in rows:
        if line.event_id not in held:
            out[key_of(line)].append(line)
    return out


def _clawbacks_of(session: Session, lines: Sequence[CommissionLine]) -> list[CommissionLine]:
    """Standing clawbacks of lines about to be reversed, and whatever gave those back (a won chargeback's
    reinstatement): they go with their original, whose recorded refunds are then re-applied to the new line."""
    found: list[CommissionLine] = []
    frontier = [x.id for x in lines]
    while frontier:
        more = session.scalars(
            select(CommissionLine)
            .where(
                CommissionLine.reverses_line_id.in_(frontier),
                CommissionLine.kind != REVERSAL,
                CommissionLine.status != LineStatus.REJECTED.value,
                not_reversed(),
            )
            .order_by(CommissionLine.created_at, CommissionLine.id)
            .execution_options(populate_existing=True)
        ).all()
        found += more
        frontier = [x.id for x in more]
    return found


def _new_lines(
    session: Session, lines: Iterable[EngineLine], partner: Partner, events: Sequence[tuple[Event, str]]
) -> list[CommissionLine]:
    """The lines now owed, explained as live ingest explains them (attribution.earn adds why the customer is
    the partner's)."""
    by_id = {e.id: e for e, _ in events}
    made = []
    for line in lines:
        model = line.draft.model()
        event = by_id[line.draft.event_id]
        decision = session.get(Attribution, event.attribution_id) if event.attribution_id else None
        customer = session.get(Customer, event.customer_id) if decision is None else None
        reason = decision.reason if decision is not None else (customer.attribution if customer else None)
        model.explanation = with_attribution(model.explanation, partner_name=partner.name, reason=reason)
        made.append(model)
    return made


def _reversal(
    line: CommissionLine, *, since: datetime | None, now: datetime, replacement: CommissionLine | None
) -> CommissionLine:
    """A line taking `line` back, with claw_back's status rule: while `line` is unpaid the reversal shares its
    status and hold (approved, rejected and paid together, netting to nothing); once it is in a batch or paid, the
    reversal is approved at once and nets against the partner's next payout."""
    unpaid = line.status in UNPAID
    currency = line.currency
    when = f"from {since:%d %b %Y}" if since is not None else "over all history"
    if line.reverses_line_id is not None:
        why = "its original line was recalculated; recorded refunds are re-applied to the line now owed"
    elif replacement is not None:
        why = f"replaced by line {replacement.id} of {format_money(replacement.amount, currency)}"
    else:
        why = "no longer owed under the plan"
    return CommissionLine(
        id=new_id("com"),
        program_id=line.program_id,
        partner_id=line.partner_id,
        customer_id=line.customer_id,
        event_id=line.event_id,
        kind=REVERSAL,
        amount=-line.amount,
        currency=currency,
        base_amount=-line.base_amount if line.base_amount is not None else None,
        rate_bp=line.rate_bp,
        rounding=line.rounding,
        status=line.status if unpaid else LineStatus.APPROVED.value,
        hold_until=line.hold_until if unpaid else now,
        reverses_line_id=line.id,
        approved_by=line.approved_by if unpaid else "system",
        approved_at=line.approved_at if unpaid else now,
        created_at=now,
        plan_version_id=line.plan_version_id,
        rule_number=line.rule_number,
        explanation=(
            f"reverses {line.kind.replace('_', '-')} line {line.id} of {format_money(line.amount, currency)} "
            f"on recalculation {when}: {why}"
        ),
    )
