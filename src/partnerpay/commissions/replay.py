"""Replaying events in memory: each event evaluated as live evaluation would have (same Evaluation, same engine),
the partner's history accumulated from the replayed events and lines instead of read from the database.

The backtest feeds it history under a draft plan and compares; recalculation feeds it a partner's events and
writes the difference; the benchmark feeds it a million events. Nothing here touches a session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from partnerpay.commissions.engine import evaluate
from partnerpay.commissions.engine_inputs import EngineLine, EventFacts, PlanRules
from partnerpay.commissions.history import History
from partnerpay.commissions.plan_earn import PAYING_TYPES, evaluation_for
from partnerpay.partners.models import Partner
from partnerpay.plans.rules import NOT_TRIGGERS
from partnerpay.programs.models import Program

# The plan version that applies to a partner at a time (PlanBook.choose through plan_earn.plan_rules, or a
# backtest's draft in place of a published version); None: the program's default rate.
Chooser = Callable[[Partner, datetime], PlanRules | None]
NOT_TRIGGER_TYPES = frozenset(t.value for t in NOT_TRIGGERS)


@dataclass(frozen=True, slots=True)
class Replayed:
    event: EventFacts
    partner_id: str | None
    lines: list[EngineLine]


def replay(
    program: Program,
    partners: Mapping[str, Partner],
    events: Iterable[tuple[EventFacts, str | None]],
    choose: Chooser,
    *,
    history: History | None = None,
    now: datetime | None = None,
) -> Iterator[Replayed]:
    """Events in the order they are to be evaluated (occurred_at, then as recorded), each with its partner id."""
    history = history if history is not None else History()
    for facts, partner_id in events:
        partner = partners.get(partner_id) if partner_id is not None else None
        paying = facts.type in PAYING_TYPES
        lines: list[EngineLine] = []
        if partner is not None and facts.type not in NOT_TRIGGER_TYPES:
            plan = choose(partner, facts.occurred_at)
            if plan is not None or paying:
                lines = evaluate(evaluation_for(program, partner, facts, plan, history, now))
        if paying:
            history.add_paying(partner_id, facts.customer_id, facts.id, facts.occurred_at)
        history.add_lines(lines, facts.occurred_at)
        yield Replayed(facts, partner_id, lines)
