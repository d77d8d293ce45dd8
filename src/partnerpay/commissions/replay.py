"""Replaying events in memory: each event evaluated as live evaluation would have (same Evaluation, same engine),
the partner's history accumulated from the replayed events and lines instead of read from the database.

The backtest feeds it history under a draft plan and compares; recalculation feeds it a partner's events and
writes the difference; the benchmark feeds it a million events. Nothing here touches a session.

Refunds, chargebacks, cancellations and won chargebacks take back (or give back) with the live path's own
arithmetic (commissions/replay_reversals.py on commissions/clawbacks.py), but only lines this replay made: a
refund of a payment the replay only remembered (`remember`) or was seeded with takes its share of the payment
and claws nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime

from partnerpay.commissions.engine import evaluate
from partnerpay.commissions.engine_inputs import EngineLine, EventFacts, PlanRules
from partnerpay.commissions.history import History, PartnerFacts
from partnerpay.commissions.plan_earn import PAYING_TYPES, evaluation_for, partner_facts, program_terms
from partnerpay.commissions.replay_reversals import CANCELED, REINSTATING, Reversals
from partnerpay.events.schemas import REVERSING
from partnerpay.fx.conversion import Converted
from partnerpay.kit.errors import ValidationError
from partnerpay.kit.gc_batch import batch_collection
from partnerpay.partners.models import Partner
from partnerpay.plans.rules import NOT_TRIGGERS
from partnerpay.programs.models import Program

__all__ = ["Chooser", "Replayed", "Reversals", "remember", "replay"]

# The plan version that applies to a partner at a time (PlanBook.choose through plan_earn.plan_rules, or a
# backtest's draft in place of a published version); None: the program's default rate.
Chooser = Callable[[Partner, datetime], PlanRules | None]
NOT_TRIGGER_TYPES = frozenset(t.value for t in NOT_TRIGGERS)
REVERSING_TYPES = frozenset(t.value for t in REVERSING)


@dataclass(frozen=True, slots=True)
class Replayed:
    event: EventFacts
    partner_id: str | None
    lines: list[EngineLine]
    plan: PlanRules | None = None  # the version the event was evaluated with (None: default rate or none)
    # Clawback or reinstatement line id -> the paying event whose line it takes back or gives back.
    reverses: Mapping[str, str] = field(default_factory=dict)
    note: str | None = None  # why a reversal took nothing (live refused it: e.g. more than is refundable)


def _first_paid(history: History, customer_id: str) -> datetime | None:
    paid = history.customer_paid.get(customer_id)
    return min(t for _, t in paid) if paid else None


def remember(
    history: History, reversals: Reversals, facts: EventFacts, partner_id: str | None, *, original_id: str | None
) -> None:
    """An event before what is replayed: a payment counts (customers, first payments) and a refund takes its
    share of the payments, but neither makes lines."""
    if facts.type in PAYING_TYPES:
        history.add_paying(partner_id, facts.customer_id, facts.id, facts.occurred_at)
        reversals.add_paid(facts)
    elif facts.type in REVERSING_TYPES:
        # One that exceeds what is refundable was refused live in this order too: it took nothing.
        with suppress(ValidationError):
            reversals.allocate(facts, original_id)
    elif facts.type == REINSTATING:
        with suppress(ValidationError):
            reversals.give_back_allocations(facts, original_id)
    elif facts.type == CANCELED:
        reversals.canceled[facts.customer_id].append(facts.occurred_at)  # it still claims those lines in full


def replay(
    program: Program,
    partners: Mapping[str, Partner],
    events: Iterable[tuple[EventFacts, str | None]],
    choose: Chooser,
    *,
    history: History | None = None,
    now: datetime | None = None,
    reversals: Reversals | None = None,
    originals: Mapping[str, str] | None = None,
    converted: Mapping[str, Converted] | None = None,
) -> Iterator[Replayed]:
    """Events in the order they are to be evaluated (occurred_at, then as recorded), each with its partner id.

    `originals`: reversal event id -> the event it names (events.original_event_id), when it names one;
    `converted`: event id -> its amount in the program currency, for events in another currency.
    """
    history = history if history is not None else History()
    reversals = reversals if reversals is not None else Reversals()
    originals = originals or {}
    converted = converted or {}
    # Read once: the partners and the program do not change while a replay runs.
    terms = program_terms(program)
    known: dict[str, PartnerFacts] = {}
    # A replay keeps every record it makes; the collector would rescan them all again and again.
    with batch_collection():
        for facts, partner_id in events:
            if facts.type in reversals.kinds:
                try:
                    taken = reversals.take_back(facts, originals.get(facts.id), _first_paid(history, facts.customer_id))
                except ValidationError as exc:
                    yield Replayed(facts, partner_id, [], note=exc.message)
                    continue
                history.add_lines(taken.lines, facts.occurred_at)
                yield Replayed(facts, partner_id, taken.lines, reverses=taken.reverses)
                continue
            partner = partners.get(partner_id) if partner_id is not None else None
            paying = facts.type in PAYING_TYPES
            lines: list[EngineLine] = []
            plan: PlanRules | None = None
            if partner is not None and facts.type not in NOT_TRIGGER_TYPES:
                plan = choose(partner, facts.occurred_at)
                if plan is not None:
                    reversals.rules.setdefault(plan.version_id, plan.rules)
                if plan is not None or paying:
                    about = known.get(partner.id)
                    if about is None:
                        about = known[partner.id] = partner_facts(partner)
                    evaluation = evaluation_for(
                        program, partner, facts, plan, history, now, converted=converted.get(facts.id), terms=terms,
                        facts=about,
                    )  # fmt: skip
                    lines = evaluate(evaluation)
            if paying:
                history.add_paying(partner_id, facts.customer_id, facts.id, facts.occurred_at)
                reversals.add_paid(facts, [line.draft for line in lines])
            history.add_lines(lines, facts.occurred_at)
            yield Replayed(facts, partner_id, lines, plan=plan)
